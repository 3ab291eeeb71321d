import { afterAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { deletePrefix, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, newMessage } from './helpers.js';

const prefixes: string[] = [];
const apps: FastifyInstance[] = [];

async function api(prefix: string, env: Record<string, string>) {
  const app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, ...env });
  apps.push(app);
  return app;
}
/** The tenant's scheduled messages, as its list shows them (the cap counts the same). */
async function scheduledCount(app: FastifyInstance, tenant: string) {
  return (await app.store.list(tenant, 'scheduled', { limit: 500 })).messages.length;
}

function freshPrefix(name: string) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const prefix of prefixes) await deletePrefix(prefix);
});

describe('rate limit per tenant', () => {
  it('is shared by every API instance and answers 429 in the error shape with Retry-After', async () => {
    const prefix = freshPrefix('limits-rate');
    const one = await api(prefix, { RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '600000' });
    const two = await api(prefix, { RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '600000' });
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const instance = i % 2 === 0 ? one : two;
      codes.push((await instance.inject({ url: '/scheduled', headers: bearer(KEY_A) })).statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 200, 429, 429]);

    const limited = await two.inject({ url: '/delivered', headers: bearer(KEY_A) });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({
      statusCode: 429,
      code: 'RATE_LIMITED',
      error: 'Too Many Requests',
      message: expect.stringContaining('Rate limit of 4 requests'),
    });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    // the other tenant is not slowed, and probes are never limited
    expect((await one.inject({ url: '/scheduled', headers: bearer(KEY_B) })).statusCode).toBe(200);
    expect((await one.inject({ url: '/health' })).statusCode).toBe(200);
    // its counter lives under the prefix
    expect(await one.redis.exists(`{${prefix}}:ratelimit:tenant-a`)).toBe(1);
  });

  it('is off with RATE_LIMIT_MAX=0', async () => {
    const app = await api(freshPrefix('limits-off'), { RATE_LIMIT_MAX: '0' });
    for (let i = 0; i < 5; i++) {
      const response = await app.inject({ url: '/scheduled', headers: bearer(KEY_A) });
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });

  it('lets requests through rather than failing them when its Redis calls fail', async () => {
    const app = await api(freshPrefix('limits-outage'), { RATE_LIMIT_MAX: '1' });
    app.redis.disconnect();
    // a request that needs no Redis of its own reaches its route: the limiter stepped aside
    const invalid = await app.inject({ url: '/scheduled?limit=0', headers: bearer(KEY_A) });
    expect(invalid.statusCode).toBe(400);
    // one that does meets the outage as a clean 503, not a 500
    const response = await app.inject({ url: '/scheduled', headers: bearer(KEY_A) });
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('REDIS_UNAVAILABLE');
  });
});

describe('scheduled messages per tenant', () => {
  it('caps outstanding scheduled messages; cancel and delivery free slots; the other tenant is unaffected', async () => {
    const prefix = freshPrefix('limits-cap');
    const app = await api(prefix, { RATE_LIMIT_MAX: '0', MAX_SCHEDULED_PER_TENANT: '2' });
    const post = (key: string, over: Record<string, unknown> = {}) =>
      app.inject({ method: 'POST', url: '/scheduled', headers: bearer(key), payload: newMessage(over) });

    const first = (await post(KEY_A)).json().id as string;
    const due = (await post(KEY_A, { sendAt: Date.now() - 1000 })).json().id as string;
    const refused = await post(KEY_A);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ statusCode: 429, code: 'SCHEDULED_LIMIT_REACHED', error: 'Too Many Requests' });
    expect((await app.inject({ url: '/scheduled', headers: bearer(KEY_A) })).json().messages).toHaveLength(2);
    expect((await post(KEY_B)).statusCode).toBe(201);

    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${first}`, headers: bearer(KEY_A) })).statusCode).toBe(200);
    expect((await post(KEY_A)).statusCode).toBe(201);
    expect((await post(KEY_A)).statusCode).toBe(429);

    // a worker's claim of a scheduled message frees its slot; a retry of a failure takes it again
    expect((await app.store.claim(due, Date.now())).outcome).toBe('claimed');
    expect(await scheduledCount(app, 'tenant-a')).toBe(1);
    await app.store.markFailed(due, Date.now(), 'PERMANENT: test');
    expect((await app.inject({ method: 'POST', url: `/failed/${due}/retry`, headers: bearer(KEY_A) })).statusCode).toBe(202);
    expect(await scheduledCount(app, 'tenant-a')).toBe(2);
    expect(await scheduledCount(app, 'tenant-b')).toBe(1);
    // the cap holds for a retry too: fail it again, fill its slot, retry → 429
    await app.store.claim(due, Date.now());
    await app.store.markFailed(due, Date.now(), 'PERMANENT: test');
    expect((await post(KEY_A)).statusCode).toBe(201);
    const retry = await app.inject({ method: 'POST', url: `/failed/${due}/retry`, headers: bearer(KEY_A) });
    expect(retry.json()).toMatchObject({ statusCode: 429, code: 'SCHEDULED_LIMIT_REACHED' });
    expect((await app.store.get('tenant-a', due))?.status).toBe('failed');
  });

  it('counts the cap atomically under concurrent creates', async () => {
    const app = await api(freshPrefix('limits-race'), { RATE_LIMIT_MAX: '0', MAX_SCHEDULED_PER_TENANT: '5' });
    const responses = await Promise.all(
      Array.from({ length: 12 }, () => app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEY_A), payload: newMessage() })),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    expect(codes.filter((c) => c === 201)).toHaveLength(5);
    expect(codes.filter((c) => c === 429)).toHaveLength(7);
    expect(await scheduledCount(app, 'tenant-a')).toBe(5);
  });
});

describe('HTTP hardening', () => {
  it('sends security headers and no CORS access unless CORS_ORIGINS allows the origin', async () => {
    const closed = await api(freshPrefix('limits-cors-closed'), {});
    const plain = await closed.inject({ url: '/health', headers: { origin: 'https://app.example.com' } });
    expect(plain.headers['x-content-type-options']).toBe('nosniff');
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();

    const open = await api(freshPrefix('limits-cors-open'), { CORS_ORIGINS: 'https://app.example.com' });
    const preflight = await open.inject({
      method: 'OPTIONS',
      url: '/scheduled',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/Idempotency-Key/i);
    const denied = await open.inject({ url: '/scheduled', headers: { origin: 'https://app.example.com' } });
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const foreign = await open.inject({ url: '/health', headers: { origin: 'https://evil.example.com' } });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });
});
