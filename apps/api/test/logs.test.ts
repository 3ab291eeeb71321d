import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '@punctual/shared';
import { loadConfig } from '../src/config.js';
import { deletePrefix, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, newMessage } from './helpers.js';

const prefix = uniquePrefix('logs');
const logs: string[] = [];
let app: FastifyInstance;

const PHONE = '4915112345678';
const OTHER_PHONE = '4915187654321';
const BODY = 'secret body text 7731';
const OTHER_BODY = 'another private text 5520';
const WRONG_KEY = 'wrong-key-never-logged-6642';
const SECRETS = [PHONE, OTHER_PHONE, BODY, OTHER_BODY, KEY_A, KEY_B, WRONG_KEY];

interface Line {
  level: number;
  msg: string;
  reqId?: string;
  tenant?: string;
  messageId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}
const lines = () => logs.map((l) => JSON.parse(l) as Line);

beforeAll(async () => {
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS }, logs);
  app.get('/ws-probe', { websocket: true }, (socket) => socket.close());
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await deletePrefix(prefix);
});

describe('logs', () => {
  it('never contain phone numbers, message bodies or API keys, valid or not', async () => {
    const body = newMessage({ recipient: `+${PHONE}`, message: BODY, metadata: { note: 'x' } });
    const post = () => app.inject({ method: 'POST', url: '/scheduled', headers: { ...bearer(KEY_A), 'idempotency-key': 'log-test' }, payload: body });
    const created = await post();
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    expect((await post()).headers['idempotent-replayed']).toBe('true');
    await app.inject({ url: `/scheduled?recipient=${PHONE}&limit=5`, headers: { 'x-api-key': KEY_A } });
    await app.inject({ url: `/scheduled/${id}`, headers: bearer(KEY_A) });
    await app.inject({ method: 'PUT', url: `/scheduled/${id}`, headers: bearer(KEY_A), payload: { recipient: OTHER_PHONE, message: OTHER_BODY } });
    await app.inject({ method: 'PUT', url: `/scheduled/${id}`, headers: bearer(KEY_A), payload: { recipient: `${OTHER_PHONE}x`, message: BODY } });
    await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_A), payload: { ...newMessage({ recipient: PHONE }), note: BODY } });
    await app.inject({ url: `/messages/${id}`, headers: bearer(KEY_B) });
    await app.inject({ method: 'DELETE', url: `/scheduled/${id}`, headers: bearer(KEY_A) });
    await app.inject({ url: '/scheduled', headers: bearer(WRONG_KEY) });
    await app.inject({ url: '/scheduled', headers: { 'x-api-key': WRONG_KEY } });
    await app.inject({ url: `/scheduled?access_token=${WRONG_KEY}` });
    await app.inject({ url: `/scheduled?access_token=${KEY_A}&api_key=${KEY_B}` });
    await expect(app.injectWS(`/ws-probe?access_token=${WRONG_KEY}`)).rejects.toThrow(/401/);
    const ws = await app.injectWS(`/ws-probe?access_token=${KEY_A}`);
    ws.terminate();

    // an outage: the error path logs too
    app.redis.disconnect();
    await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_A), payload: newMessage({ recipient: PHONE, message: BODY }) });

    const text = logs.join('\n');
    expect(lines().length).toBeGreaterThan(14);
    for (const secret of SECRETS) expect(text, `log contains ${secret}`).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('carry the request id, the tenant and the message id on every line of a request', async () => {
    const created = await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_B), payload: newMessage() });
    // Redis was disconnected above: this may be a 503; either way its lines are bound
    const reqLines = lines().filter((l) => l.reqId !== undefined);
    const byRequest = new Map<string, Line[]>();
    for (const l of reqLines) byRequest.set(l.reqId!, [...(byRequest.get(l.reqId!) ?? []), l]);
    for (const group of byRequest.values()) {
      const completed = group.find((l) => l.msg === 'request completed');
      expect(completed, JSON.stringify(group)).toBeDefined();
      if (completed!.res!.statusCode === 401 || completed!.req!.url.startsWith('/ws-probe')) continue;
      for (const l of group) expect(l.tenant, JSON.stringify(l)).toMatch(/^tenant-[ab]$/);
      const idRoute = /\/(scheduled|messages)\/[0-9A-Z]{26}/.test(completed!.req!.url);
      if (idRoute) for (const l of group) expect(l.messageId, JSON.stringify(l)).toMatch(/^[0-9A-Z]{26}$/);
    }
    const scheduled = lines().filter((l) => l.msg === 'message scheduled');
    expect(scheduled.length).toBeGreaterThan(0);
    for (const l of scheduled) {
      const sameRequest = lines().filter((o) => o.reqId === l.reqId);
      for (const o of sameRequest) expect(o.messageId).toBe(l.messageId);
    }
    expect([201, 503]).toContain(created.statusCode);
  });

  it('log one line per request', () => {
    const perRequest = new Map<string, number>();
    for (const l of lines()) if (l.msg === 'request completed') perRequest.set(l.reqId!, (perRequest.get(l.reqId!) ?? 0) + 1);
    expect([...perRequest.values()].every((n) => n === 1)).toBe(true);
    expect(lines().some((l) => l.msg === 'incoming request')).toBe(false);
  });
});

describe('configuration errors', () => {
  const errorOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`no error for ${JSON.stringify(env)}`);
  };

  it.each([
    ['REDIS_URL', 'http://admin:hunter2-pw@redis.internal:6379', 'hunter2-pw'],
    ['ADMIN_API_KEY', 'short-s3cret', 'short-s3cret'],
    ['REDIS_CLUSTER_NODES', 'user:pw-77@node-1:99999', 'pw-77'],
    ['CORS_ORIGINS', 'https://ok.example.com,ftp://user:pw-88@x.example.com', 'pw-88'],
    ['WS_ALLOWED_ORIGINS', 'https://user:pw-99@x.example.com/path', 'pw-99'],
  ])('name %s without printing its value', (name, value, secret) => {
    const message = errorOf({ [name]: value });
    expect(message).toMatch(new RegExp(`^Invalid configuration: ${name} `));
    expect(message).not.toContain(secret);
  });

  it('print the value of a number or a fixed choice, which helps and cannot be a secret', () => {
    expect(errorOf({ PORT: 'eighty' })).toBe('Invalid configuration: PORT expected integer (got "eighty")');
    expect(errorOf({ LOG_LEVEL: 'loud' })).toMatch(/^Invalid configuration: LOG_LEVEL .*\(got "loud"\)$/);
  });
});
