import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startRedisServer, type SpawnedRedis } from '../../packages/store/src/index.js';
import { buildTestApp } from '../../test-support/apps.js';
import { spawnWorker, type WorkerProcess } from '../../test-support/processes.js';
import { FeedWatcher, uniquePrefix } from '../../test-support/redis.js';
import { waitUntil } from '../../test-support/wait.js';

const CI = process.env.CI === 'true';
const COUNT = CI ? 240 : 480;
const KILLS = 3;

const dataDir = mkdtempSync(join(tmpdir(), 'punctual-worker-crash-'));
const prefix = uniquePrefix('fault-worker');
let redis: SpawnedRedis;
let app: FastifyInstance;
let feed: FeedWatcher;
const workers: WorkerProcess[] = [];

// slow enough (50 ms a message, 10 at a time) that every kill lands in the middle of deliveries
const startWorker = async () => {
  const worker = await spawnWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: prefix, SIMULATED_LATENCY_MS: '50', WORKER_CONCURRENCY: '10' });
  workers.push(worker);
  return worker;
};

// the e2e project's global setup has built the apps (tsc -b)
beforeAll(async () => {
  redis = await startRedisServer({ dataDir });
  app = await buildTestApp(prefix, {}, redis.url);
  feed = await FeedWatcher.start(prefix, redis.url);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.crash()));
  await app?.close();
  await feed?.close();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

it('two worker processes, one SIGKILLed again and again mid-burst: every message delivered, none recorded twice', async () => {
  const live = [await startWorker(), await startWorker()];
  const start = Date.now() + 500;
  const posted = await Promise.all(
    Array.from({ length: COUNT }, (_, i) =>
      app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '5511999999999', message: `burst ${i}`, sendAt: start + i * 4, channel: 'sms' } }),
    ),
  );
  expect(posted.map((r) => r.statusCode)).toEqual(posted.map(() => 201));
  const ids = posted.map((r) => r.json().id as string);

  for (let kill = 1; kill <= KILLS; kill++) {
    await feed.waitForCount('messageDelivered', Math.floor((COUNT * kill) / (KILLS + 1)), 120_000);
    const victim = live[kill % 2]!;
    await victim.crash();
    live[kill % 2] = await startWorker();
  }
  for (const id of ids) await feed.waitFor('messageDelivered', id, 120_000);
  // jobs of killed workers that re-run after everything was delivered must change nothing
  await waitUntil(
    async () => Object.values(await app.deliveries.of(ids[0]!).getJobCounts('active', 'wait', 'delayed', 'prioritized')).every((n) => n === 0),
    'no delivery job left',
    { timeoutMs: 120_000, intervalMs: 200 },
  );

  const duplicates = ids.filter((id) => feed.events(id).filter((e) => e === 'messageSending').length > 1);
  console.log(`${KILLS} worker kills, ${COUNT} messages: ${duplicates.length} handed to the provider more than once (at least once), each recorded once`);
  for (const id of ids) {
    const events = feed.events(id);
    expect(events.filter((e) => e === 'messageDelivered'), id).toHaveLength(1);
    expect(events).not.toContain('messageFailed');
  }
  const listed: string[] = [];
  let cursor: string | null = null;
  do {
    const page = (await app.inject({ url: `/delivered?limit=500${cursor ? `&cursor=${cursor}` : ''}` })).json();
    listed.push(...page.messages.map((m: { id: string; status: string }) => (expect(m.status).toBe('delivered'), m.id)));
    cursor = page.nextCursor;
  } while (cursor);
  expect(listed).toHaveLength(COUNT);
  expect(new Set(listed)).toEqual(new Set(ids));
}, 300_000);
