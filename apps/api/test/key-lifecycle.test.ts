import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { ApiKeyStore, Keyspace } from '@punctual/store';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { FailedKeyLimiter, addressKey } from '../src/failed-keys.js';
import { KEY_A, TWO_TENANTS, bearer, buildTestApi } from './helpers.js';
import { FeedClient } from './ws/feed-client.js';

const prefixes: string[] = [];
const apps: FastifyInstance[] = [];
let redis: Redis;

beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  redis.disconnect();
  await Promise.all(prefixes.map((p) => deletePrefix(p)));
});

async function api(env: Record<string, string> = {}, logs?: string[]) {
  const prefix = uniquePrefix('key-life');
  prefixes.push(prefix);
  const app = await buildTestApi(prefix, env, logs);
  apps.push(app);
  return { app, prefix, keys: new ApiKeyStore(redis, new Keyspace({ prefix, partitions: 1 })) };
}

/** Another instance of the same deployment, started now. */
async function another(prefix: string, env: Record<string, string> = {}) {
  const app = await buildTestApi(prefix, env);
  apps.push(app);
  return app;
}

/** Polls until `check` holds, or fails after `limitMs`: the bound the contract promises. */
async function within(limitMs: number, what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function closedWithin(client: FeedClient, limitMs: number): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms`)), limitMs);
    void client.closed.then((closed) => (clearTimeout(timer), resolve(closed)));
  });
}

describe('open dev mode', () => {
  it('ends within 5 s of the first key created anywhere, and revoking every key never reopens it', async () => {
    const { app, prefix, keys } = await api();
    expect(app.authRequired).toBe(false);
    expect((await app.inject({ url: '/scheduled' })).statusCode).toBe(200);
    const openFeed = await FeedClient.inject(app, '/ws');

    // `pnpm keys create`, from another process: only Redis changes
    const { key, entry } = await keys.create('acme');
    await within(5000, 'closed to requests without a key', async () => (await app.inject({ url: '/scheduled' })).statusCode === 401);
    expect(app.authRequired).toBe(true);
    const withKey = await app.inject({ url: '/scheduled', headers: bearer(key) });
    expect(withKey.statusCode).toBe(200);
    expect(withKey.headers['x-ratelimit-limit']).toBeDefined();
    // the feed client that came in without a key is let go too
    expect(await closedWithin(openFeed, 5000)).toEqual({ code: 1008, reason: 'an API key is now required' });

    await keys.revoke(entry.id);
    await within(10_000, 'the revoked key refused', async () => (await app.inject({ url: '/scheduled', headers: bearer(key) })).statusCode === 401);
    expect((await app.inject({ url: '/scheduled' })).statusCode).toBe(401);
    // a deployment whose last key was revoked is not open, not even in a new instance, not even in production
    for (const env of [{}, { NODE_ENV: 'production' }]) {
      const fresh = await another(prefix, env);
      expect(fresh.authRequired).toBe(true);
      expect((await fresh.inject({ url: '/scheduled' })).statusCode).toBe(401);
    }
  });

  it('never starts with API_KEYS_REQUIRED: answers 401 until a key exists, says how to make one', async () => {
    const logs: string[] = [];
    const { app, keys } = await api({ NODE_ENV: 'production', API_KEYS_REQUIRED: 'true' }, logs);
    expect(app.authRequired).toBe(true);
    expect((await app.inject({ url: '/scheduled' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    const advice = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.startsWith('No API key exists yet'));
    expect(advice?.level).toBe(40);
    expect(advice?.msg).toContain('docker compose exec api node apps/api/dist/cli/keys.js create <tenant>');

    const { key } = await keys.create('first');
    expect((await app.inject({ url: '/scheduled', headers: bearer(key) })).statusCode).toBe(200);
  });
});

describe('revoked keys', () => {
  it("close the key's live-feed connections within 10 s; other keys' stay open", async () => {
    const { app, keys } = await api({ API_KEYS: TWO_TENANTS });
    const { key, entry } = await keys.create('tenant-a');
    const { key: kept } = await keys.create('tenant-a');
    const revokedFeed = await FeedClient.inject(app, `/ws?access_token=${key}`);
    const keptFeed = await FeedClient.inject(app, `/ws?access_token=${kept}`);
    const configuredFeed = await FeedClient.inject(app, `/ws?access_token=${KEY_A}`);
    expect(app.feed.clientCount).toBe(3);

    await keys.revoke(entry.id);
    expect(await closedWithin(revokedFeed, 10_000)).toEqual({ code: 1008, reason: 'API key revoked' });
    expect(app.feed.clientCount).toBe(2);
    expect(keptFeed.socket.readyState).toBe(keptFeed.socket.OPEN);
    expect(configuredFeed.socket.readyState).toBe(configuredFeed.socket.OPEN);
    expect((await app.inject({ url: '/scheduled', headers: bearer(key) })).statusCode).toBe(401);
    await keptFeed.close();
    await configuredFeed.close();
  });
});

describe('repeated unknown keys from one address', () => {
  it('get 429 RATE_LIMITED with Retry-After before any lookup, other addresses unaffected', async () => {
    const { app } = await api({ API_KEYS: TWO_TENANTS, FAILED_KEY_LIMIT: '5' });
    const from = (remoteAddress: string, key: string) => app.inject({ url: '/scheduled', headers: bearer(key), remoteAddress });
    for (let i = 0; i < 5; i++) expect((await from('203.0.113.7', `guess-${i}`)).statusCode).toBe(401);

    const refused = await from('203.0.113.7', 'guess-5');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: expect.stringContaining('unknown API key') });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // the right key too: the address is refused before any key is checked
    expect((await from('203.0.113.7', KEY_A)).statusCode).toBe(429);
    expect((await from('198.51.100.1', KEY_A)).statusCode).toBe(200);

    // no Redis at all, and the refused address still gets its 429: nothing was looked up
    app.redis.disconnect();
    expect((await from('203.0.113.7', 'guess-6')).statusCode).toBe(429);
    expect((await from('198.51.100.1', 'guess-7')).statusCode).toBe(503);
  });

  it("are counted by the client's address behind a trusted proxy (TRUST_PROXY)", async () => {
    const { app } = await api({ API_KEYS: TWO_TENANTS, FAILED_KEY_LIMIT: '1', TRUST_PROXY: '127.0.0.1' });
    const via = (client: string) => app.inject({ url: '/scheduled', headers: { ...bearer('guess'), 'x-forwarded-for': client }, remoteAddress: '127.0.0.1' });
    expect((await via('203.0.113.9')).statusCode).toBe(401);
    expect((await via('203.0.113.9')).statusCode).toBe(429);
    expect((await via('203.0.113.10')).statusCode).toBe(401);
  });

  it('are counted in bounded memory, an IPv6 client by its /64', () => {
    const limiter = new FailedKeyLimiter({ max: 2, windowMs: 60_000, maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) limiter.failed(`10.0.${i >> 8}.${i & 255}`, 1000);
    expect(limiter.size).toBe(100);

    limiter.failed('2001:db8:1:2::1', 1000);
    limiter.failed('2001:db8:1:2:ffff::9', 1000);
    expect(limiter.retryAfter('2001:db8:1:2:abcd::', 1000)).toBe(60);
    expect(limiter.retryAfter('2001:db8:1:3::1', 1000)).toBe(0);
    expect(limiter.retryAfter('2001:db8:1:2::1', 61_000)).toBe(0);
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:0db8:0001:0002:0:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });
});
