import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { QUEUES } from '../packages/shared/src/index.js';
import { parseStored } from '../packages/store/src/index.js';
import { buildTestApp, startTestWorker } from '../test-support/apps.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';

const prefix = uniquePrefix('e2e-recovery');
let app: FastifyInstance;
let feed: FeedWatcher;
let redis: Redis;

beforeAll(async () => {
  app = await buildTestApp(prefix);
  feed = await FeedWatcher.start(prefix);
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await app.close();
  await feed.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const post = async (sendAt: number) =>
  (await app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '5511999999999', message: 'Hi', sendAt, channel: 'sms' } })).json().id as string;

it('messages that fell due while no worker ran are all delivered once one starts', async () => {
  const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => post(Date.now() - 1000 + i * 10)));
  const ahead = await post(Date.now() + 500);
  const worker = await startTestWorker(prefix);
  try {
    for (const id of [...ids, ahead]) await feed.waitFor('messageDelivered', id);
  } finally {
    await worker.close();
  }
  for (const id of ids) expect(feed.events(id).filter((e) => e === 'messageDelivered')).toHaveLength(1);
});

it('a due record whose job vanished (a Redis error failed it, an enqueue was lost) is delivered by the reconciler', async () => {
  const id = await post(Date.now() - 5000);
  await app.deliveries.of(id).remove(id);
  expect(await app.deliveries.of(id).getJob(id)).toBeUndefined();
  const worker = await startTestWorker(prefix);
  try {
    await feed.waitFor('messageDelivered', id);
  } finally {
    await worker.close();
  }
  expect((await app.inject({ url: `/messages/${id}` })).json().data.status).toBe('delivered');
});

it('a job left delayed past its time (a promotion BullMQ missed) is promoted by the reconciler', async () => {
  const id = await post(Date.now() + 3_600_000);
  // the record says due now, the job still says in an hour: what a lost promotion looks like
  const key = `{${prefix}-p0}:m:${id}`;
  await redis.set(key, JSON.stringify({ ...parseStored((await redis.get(key))!), sendAt: String(Date.now() - 5000) }));
  await redis.zadd(`{${prefix}-p0}:due`, Date.now() - 5000, id);
  const worker = await startTestWorker(prefix);
  try {
    await feed.waitFor('messageDelivered', id);
  } finally {
    await worker.close();
  }
});

it('a job whose record is gone (deleted by retention) does nothing', async () => {
  const id = app.store.newMessageId();
  await app.deliveries.of(id).add(QUEUES.deliveries.job, { id }, { jobId: id });
  const worker = await startTestWorker(prefix);
  try {
    const sentinel = await post(Date.now());
    await feed.waitFor('messageDelivered', sentinel);
  } finally {
    await worker.close();
  }
  expect(feed.events(id)).toEqual([]);
});
