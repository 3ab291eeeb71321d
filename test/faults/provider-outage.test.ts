import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, type SpawnedRedis } from '../../packages/store/src/index.js';
import { buildTestApp } from '../../test-support/apps.js';
import { FakeHttpServer } from '../../test-support/fake-http.js';
import { spawnWorker, type WorkerProcess } from '../../test-support/processes.js';
import { twilioEnv, twilioError, twilioMessage } from '../../test-support/providers.js';
import { FeedWatcher, keysOfPrefix, uniquePrefix } from '../../test-support/redis.js';
import { waitUntil } from '../../test-support/wait.js';

const COUNT = 30;
const ATTEMPTS = 10;
/** The provider answers 503 until every message has been refused this many times. */
const REFUSALS = 2;

const prefix = uniquePrefix('fault-provider');
let redis: SpawnedRedis;
let app: FastifyInstance;
let feed: FeedWatcher;
let fake: FakeHttpServer;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
  app = await buildTestApp(prefix, {}, redis.url);
  feed = await FeedWatcher.start(prefix, redis.url);
  fake = await FakeHttpServer.start();
});
afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await feed?.close();
  await fake?.close();
  await redis?.stop();
});

it('a provider down for a while (503): every message retries and is delivered once when it returns, none failed', async () => {
  const refused = new Map<string, number>();
  const answered = new Map<string, number[]>();
  let down = true;
  fake.respondWith((request) => {
    const text = new URLSearchParams(request.body).get('Body')!;
    const answer = down ? twilioError(503, 20503, 'Service Unavailable') : { status: 201, body: twilioMessage('SMback') };
    if (down) refused.set(text, (refused.get(text) ?? 0) + 1);
    answered.set(text, [...(answered.get(text) ?? []), answer.status]);
    // back up once the whole backlog has been refused REFUSALS times
    if (down && refused.size === COUNT && [...refused.values()].every((n) => n >= REFUSALS)) down = false;
    return answer;
  });
  worker = await spawnWorker({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    ...twilioEnv(fake.url),
    DELIVERY_ATTEMPTS: String(ATTEMPTS),
    DELIVERY_BACKOFF_MS: '50',
    PROVIDER_TIMEOUT_MS: '2000',
  });

  const posted = await Promise.all(
    Array.from({ length: COUNT }, (_, i) =>
      app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '5511999999999', message: `outage ${i}`, sendAt: Date.now(), channel: 'sms' } }),
    ),
  );
  const ids = posted.map((r) => r.json().id as string);
  for (const id of ids) await feed.waitFor('messageDelivered', id, 60_000);

  expect(down).toBe(false);
  for (const [i, id] of ids.entries()) {
    const events = feed.events(id);
    expect(events.filter((e) => e === 'messageDelivered'), id).toHaveLength(1);
    expect(events).not.toContain('messageFailed');
    expect(events.filter((e) => e === 'messageRetrying').length).toBeGreaterThanOrEqual(REFUSALS);
    const statuses = answered.get(`outage ${i}`)!;
    // refused while down, then exactly one success: each attempt is one provider request
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.at(-1)).toBe(201);
    const record = (await app.inject({ url: `/scheduled/${id}` })).json().data;
    expect(record).toMatchObject({ status: 'delivered', attempts: statuses.length });
    expect(record.attempts).toBeLessThanOrEqual(ATTEMPTS);
  }

  // finished jobs are removed (the delivery worker's removeOnComplete): nothing stays behind
  const client = new Redis(redis.url);
  try {
    const queue = app.deliveries.of(ids[0]!);
    await waitUntil(
      async () => Object.values(await queue.getJobCounts('active', 'wait', 'delayed', 'completed', 'failed')).every((n) => n === 0),
      'every delivery job removed',
    );
    const jobKeys = (await keysOfPrefix(client, prefix)).filter((key) => ids.some((id) => key === queue.toKey(id)));
    expect(jobKeys).toEqual([]);
  } finally {
    client.disconnect();
  }
}, 120_000);
