import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '@punctual/shared';
import { ApiKeyStore } from '@punctual/store';
import { deletePrefix, uniquePrefix } from '../../../test-support/redis.js';
import { loadConfig } from '../src/config.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, newMessage } from './helpers.js';

const prefix = uniquePrefix('auth');
let app: FastifyInstance;

/** A WebSocket route like the live feed's that tells the client which tenant it was given. */
async function withStandIns(api: FastifyInstance) {
  api.get('/ws-probe', { websocket: true }, (socket, request) => {
    socket.send(request.tenant);
  });
  await api.ready();
  return api;
}

/** The tenant the probe route reports to a client that connects with these credentials. */
async function tenantOverWebSocket(path: string, headers: Record<string, string> = {}): Promise<string> {
  let frame!: Promise<string>;
  const ws = await app.injectWS(path, { headers }, {
    onInit: (socket) => {
      frame = new Promise((resolve) => socket.once('message', (data) => resolve(String(data))));
    },
  });
  try {
    return await frame;
  } finally {
    ws.terminate();
  }
}

beforeAll(async () => {
  // these tests present many wrong keys from one address: the per-address limit has its own tests
  app = await withStandIns(await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, FAILED_KEY_LIMIT: '0' }));
});
afterAll(async () => {
  await app.close();
  await deletePrefix(prefix);
});

const expectUnauthorized = (response: { statusCode: number; json(): unknown; headers: Record<string, unknown> }) => {
  expect(response.statusCode).toBe(401);
  expect(response.json()).toEqual({
    statusCode: 401,
    code: 'UNAUTHORIZED',
    error: 'Unauthorized',
    message: expect.stringContaining('API key'),
  });
  expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
};

describe('API keys', () => {
  it.each([
    ['no key', {}],
    ['an unknown bearer key', bearer('not-a-key')],
    ['an unknown x-api-key', { 'x-api-key': 'not-a-key' }],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`x:${KEY_A}`).toString('base64')}` }],
    ['the key without a scheme', { authorization: KEY_A }],
    ['a key with a character changed', bearer(`${KEY_A.slice(0, -1)}X`)],
    ['a tenant id header alone', { 'x-tenant-id': 'tenant-a' }],
  ])('refuses %s with 401 on every route', async (_name, headers) => {
    const id = '01J0000000000000000000000A';
    const requests = [
      { method: 'GET' as const, url: '/scheduled' },
      { method: 'POST' as const, url: '/scheduled', payload: newMessage() },
      { method: 'GET' as const, url: `/scheduled/${id}` },
      { method: 'PUT' as const, url: `/scheduled/${id}`, payload: { message: 'x' } },
      { method: 'DELETE' as const, url: `/scheduled/${id}` },
      { method: 'GET' as const, url: '/delivered' },
      { method: 'GET' as const, url: '/failed' },
      { method: 'GET' as const, url: '/canceled' },
      { method: 'GET' as const, url: `/messages/${id}` },
      { method: 'POST' as const, url: `/failed/${id}/retry` },
      { method: 'GET' as const, url: '/no-such-route' },
    ];
    for (const request of requests) expectUnauthorized(await app.inject({ ...request, headers }));
  });

  it('accepts the key as a bearer token or as x-api-key, case-insensitive scheme', async () => {
    for (const headers of [bearer(KEY_A), { 'x-api-key': KEY_A }, { authorization: `bearer ${KEY_A}` }]) {
      expect((await app.inject({ url: '/scheduled', headers })).statusCode).toBe(200);
    }
  });

  it('does not accept ?access_token= on plain HTTP requests', async () => {
    expectUnauthorized(await app.inject({ url: `/scheduled?access_token=${KEY_A}` }));
  });

  it('leaves health, readiness and the API description open', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    // no worker runs here, so readiness is 503 — but never 401
    expect((await app.inject({ url: '/ready' })).json()).toMatchObject({ status: 'not_ready' });
    for (const url of ['/metrics', '/openapi.json', '/docs', '/docs/static/index.html']) {
      expect((await app.inject({ url })).statusCode).toBeLessThan(400);
    }
  });

  it('never lets x-tenant-id choose the tenant', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/scheduled',
      headers: { ...bearer(KEY_A), 'x-tenant-id': 'tenant-b' },
      payload: newMessage(),
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    const asB = await app.inject({ url: `/scheduled/${id}`, headers: { ...bearer(KEY_B), 'x-tenant-id': 'tenant-a' } });
    expect(asB.statusCode).toBe(404);
  });

  it('guards WebSocket upgrades: header or ?access_token=, else 401', async () => {
    await expect(app.injectWS('/ws-probe')).rejects.toThrow(/401/);
    await expect(app.injectWS('/ws-probe?access_token=wrong')).rejects.toThrow(/401/);

    expect(await tenantOverWebSocket('/ws-probe', bearer(KEY_B))).toBe('tenant-b');
    expect(await tenantOverWebSocket(`/ws-probe?access_token=${KEY_A}`)).toBe('tenant-a');
  });

  it('accepts keys created in the Redis key store and stops accepting revoked ones', async () => {
    const store = new ApiKeyStore(app.redis, app.store.keys);
    const { key, entry } = await store.create('tenant-c');
    expect((await app.inject({ url: '/scheduled', headers: bearer(key) })).statusCode).toBe(200);
    expect(await store.revoke(entry.id)).toEqual(entry);
    // a fresh instance has no cached answer: the revocation holds everywhere
    const other = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS });
    try {
      expectUnauthorized(await other.inject({ url: '/scheduled', headers: bearer(key) }));
    } finally {
      await other.close();
    }
  });

  it('stores keys only as hashes', async () => {
    const store = new ApiKeyStore(app.redis, app.store.keys);
    const { key } = await store.create('tenant-d');
    const stored = await app.redis.hgetall(app.store.keys.apiKeys());
    expect(JSON.stringify(stored)).not.toContain(key);
  });
});

describe('open dev mode and production', () => {
  it('runs open as tenant default outside production when no key is configured anywhere', async () => {
    const openPrefix = uniquePrefix('auth-open');
    const logs: string[] = [];
    const open = await buildTestApi(openPrefix, {}, logs);
    try {
      expect(logs.some((line) => JSON.parse(line).level === 40 && line.includes('open dev mode'))).toBe(true);
      const created = await open.inject({ method: 'POST', url: '/scheduled', payload: newMessage() });
      expect(created.statusCode).toBe(201);
      expect(await open.store.get('default', created.json().id)).not.toBeNull();
      expect(created.headers['x-ratelimit-limit']).toBeUndefined();
    } finally {
      await open.close();
      await deletePrefix(openPrefix);
    }
  });

  it('requires keys once the Redis key store has one, even without API_KEYS', async () => {
    const storePrefix = uniquePrefix('auth-store');
    const seed = await buildTestApi(storePrefix, { API_KEYS: TWO_TENANTS });
    const { key } = await new ApiKeyStore(seed.redis, seed.store.keys).create('tenant-s');
    await seed.close();
    const api = await buildTestApi(storePrefix, { NODE_ENV: 'production' });
    try {
      expectUnauthorized(await api.inject({ url: '/scheduled' }));
      expect((await api.inject({ url: '/scheduled', headers: bearer(key) })).statusCode).toBe(200);
    } finally {
      await api.close();
      await deletePrefix(storePrefix);
    }
  });

  it('refuses to start in production without any key', async () => {
    const prodPrefix = uniquePrefix('auth-prod');
    const started = buildTestApi(prodPrefix, { NODE_ENV: 'production' });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(/API_KEYS/);
    await deletePrefix(prodPrefix);
  });

  it('reports bad key configuration without echoing the keys', () => {
    expect(() => loadConfig({ API_KEYS: 'tenant-a:secret-one,not a pair' })).toThrow(ConfigError);
    try {
      loadConfig({ API_KEYS: 'tenant-a:secret-one,bad{tenant}:secret-two' });
    } catch (err) {
      expect((err as Error).message).toContain('API_KEYS entry 2');
      expect((err as Error).message).not.toContain('secret');
    }
    expect(() => loadConfig({ API_KEYS: 'a:same-key,b:same-key' })).toThrow(/entry 2/);
    expect(() => loadConfig({ API_KEYS_FILE: '/nonexistent/keys' })).toThrow(/API_KEYS_FILE/);
  });

  it('reads API_KEYS as comma-separated pairs and files one per line with comments', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const file = `${mkdtempSync(`${tmpdir()}/keys-`)}/keys.txt`;
    writeFileSync(file, '# operators\nops:key-one # the main one\n\nbilling:key-two,audit:key-three\n');
    const config = loadConfig({ API_KEYS: 'x:k1, y:k2', API_KEYS_FILE: file });
    expect(config.apiKeys.map((k) => k.tenant)).toEqual(['x', 'y', 'ops', 'billing', 'audit']);
    expect(JSON.stringify(config)).not.toMatch(/key-one|k1/);
  });
});
