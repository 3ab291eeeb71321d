import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startRedisServer, type SpawnedRedis } from '../../packages/store/src/index.js';
import { crashRedis } from '../../packages/store/src/testing.js';
import { buildTestApp, startTestWorker } from '../../test-support/apps.js';
import { FeedWatcher, uniquePrefix } from '../../test-support/redis.js';
import { waitUntil } from '../../test-support/wait.js';

const CI = process.env.CI === 'true';

describe.each(['always', 'everysec'] as const)('Redis killed with SIGKILL and restarted (appendfsync %s)', (appendfsync) => {
  const dataDir = mkdtempSync(join(tmpdir(), `punctual-crash-${appendfsync}-`));
  const prefix = uniquePrefix(`fault-redis-${appendfsync}`);
  let redis: SpawnedRedis;
  let app: FastifyInstance;
  let worker: Awaited<ReturnType<typeof startTestWorker>>;
  let feed: FeedWatcher;

  beforeAll(async () => {
    redis = await startRedisServer({ dataDir, appendfsync });
    app = await buildTestApp(prefix, {}, redis.url);
    worker = await startTestWorker(prefix, {}, { url: redis.url });
    feed = await FeedWatcher.start(prefix, redis.url);
  });
  afterAll(async () => {
    await worker?.close();
    await app?.close();
    await feed?.close();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (sendAt: number) =>
    app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '5511999999999', message: 'Hi', sendAt, channel: 'sms' } });
  const healthy = () => waitUntil(async () => (await app.inject({ url: '/health' })).statusCode === 200, 'API healthy again');

  it('answers 503 while down, reconnects on its own, and delivers what it accepted once', async () => {
    // delivered before the crash: must not be delivered again after it
    const early = await Promise.all(Array.from({ length: 10 }, () => post(Date.now())));
    const earlyIds = early.map((r) => r.json().id as string);
    for (const id of earlyIds) await feed.waitFor('messageDelivered', id);
    // due while Redis is down or just after it is back
    const count = CI ? 30 : 60;
    const pending = await Promise.all(Array.from({ length: count }, (_, i) => post(Date.now() + 300 + i * 20)));
    expect(pending.map((r) => r.statusCode)).toEqual(pending.map(() => 201));
    const pendingIds = pending.map((r) => r.json().id as string);

    await crashRedis(redis);
    const health = await app.inject({ url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ status: 'error', redis: 'disconnected' });
    const started = Date.now();
    const refused = await post(Date.now());
    expect(refused.statusCode).toBe(503);
    expect(refused.json().code).toBe('REDIS_UNAVAILABLE');
    // a bound, not a timing measurement: the request must not wait for Redis to come back
    expect(Date.now() - started).toBeLessThan(5000);

    redis = await startRedisServer({ port: redis.port, dataDir, appendfsync });
    await healthy();
    // the API and the worker are back: a new message goes all the way through
    const after = (await post(Date.now())).json().id as string;
    await feed.waitFor('messageDelivered', after, 30_000);

    const survived: string[] = [];
    for (const id of pendingIds) if ((await app.inject({ url: `/messages/${id}` })).statusCode === 200) survived.push(id);
    if (appendfsync === 'always') expect(survived).toEqual(pendingIds);
    else console.log(`appendfsync everysec: ${pendingIds.length - survived.length}/${pendingIds.length} accepted messages lost in the crash`);
    for (const id of survived) await feed.waitFor('messageDelivered', id, 30_000);

    for (const id of [...earlyIds, ...survived, after]) {
      expect((await app.inject({ url: `/messages/${id}` })).json().data.status).toBe('delivered');
      expect(feed.events(id).filter((e) => e === 'messageDelivered')).toHaveLength(1);
    }
    const listed = (await app.inject({ url: '/delivered?limit=500' })).json().messages.map((m: { id: string }) => m.id) as string[];
    expect(listed.length).toBe(new Set(listed).size);
    expect(new Set(listed)).toEqual(new Set([...earlyIds, ...survived, after]));
  }, 90_000);
});
