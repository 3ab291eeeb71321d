import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, type SpawnedRedis } from '@punctual/store';
import { uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

/** A Redis of this file's own: it is made to run out of memory, which no other test may see. */
let server: SpawnedRedis;
let admin: Redis;
let app: FastifyInstance;
const prefix = uniquePrefix('refusals');
const logs: string[] = [];

const PHONE = '4915112349876';
const BODY = 'private words 90417';

const outOfMemory = () => admin.config('SET', 'maxmemory', '1');
const memoryBack = () => admin.config('SET', 'maxmemory', '0');

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS }, logs, server.url);
  // Redis runs out of memory while a request is answered: after its write, before the API's own bookkeeping
  app.addHook('preSerialization', async (request, _reply, payload) => {
    if (request.headers['x-test-oom-before-reply']) await outOfMemory();
    return payload;
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  admin?.disconnect();
  await server?.stop();
});

describe('Redis refusing writes for memory (OOM under noeviction)', () => {
  it('answers 503 REDIS_UNAVAILABLE to a POST, and stores nothing', async () => {
    await outOfMemory();
    try {
      const before = await fingerprint(admin, prefix);
      const post = await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_A), payload: newMessage({ recipient: PHONE, message: BODY }) });
      const idempotent = await app.inject({
        method: 'POST',
        url: '/scheduled',
        headers: { ...bearer(KEY_A), 'idempotency-key': 'oom-1' },
        payload: newMessage({ recipient: PHONE, message: BODY }),
      });
      for (const response of [post, idempotent]) {
        expect(response.statusCode, response.body).toBe(503);
        expect(response.json()).toEqual({ statusCode: 503, code: 'REDIS_UNAVAILABLE', error: 'Service Unavailable', message: expect.any(String) });
      }
      expect(await fingerprint(admin, prefix)).toEqual(before);
    } finally {
      await memoryBack();
    }
  });

  it('refuses a PUT whole (503, nothing changed), as it does a POST', async () => {
    const created = await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_A), payload: newMessage() });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id as string;
    await outOfMemory();
    try {
      const before = await fingerprint(admin, prefix);
      for (const payload of [{ recipient: PHONE, message: BODY }, { sendAt: Date.now() + 7_200_000 }, { metadata: { note: 'x'.repeat(500) } }]) {
        const put = await app.inject({ method: 'PUT', url: `/scheduled/${id}`, headers: bearer(KEY_A), payload });
        expect(put.statusCode, put.body).toBe(503);
        expect(put.json()).toMatchObject({ statusCode: 503, code: 'REDIS_UNAVAILABLE' });
      }
      expect(await fingerprint(admin, prefix)).toEqual(before);
    } finally {
      await memoryBack();
    }
    expect((await app.inject({ url: `/scheduled/${id}`, headers: bearer(KEY_A) })).json().data).toEqual(created.json().data);
  });

  it('never puts the arguments of the refused command (phone number, text) in a log line', async () => {
    // the idempotency outcome (the response: recipient and text) is refused by Redis, and logged as a warning
    const response = await app.inject({
      method: 'POST',
      url: '/scheduled',
      headers: { ...bearer(KEY_A), 'idempotency-key': 'oom-2', 'x-test-oom-before-reply': '1' },
      payload: newMessage({ recipient: PHONE, message: BODY }),
    });
    await memoryBack();
    expect(response.statusCode).toBe(201);

    const lines = logs.map((l) => JSON.parse(l) as { msg: string; err?: { type: string; message: string } });
    const refused = lines.find((l) => l.msg.startsWith('idempotency outcome not stored'));
    expect(refused?.err).toMatchObject({ type: 'ReplyError', message: expect.stringMatching(/^OOM command not allowed/) });
    const text = logs.join('\n');
    expect(text).not.toContain(PHONE);
    expect(text).not.toContain(BODY);
    expect(text).not.toContain('"command"');
  });
});
