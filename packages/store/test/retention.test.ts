import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FleetStats, Keyspace, LATENESS_BUCKETS_MS, Maintenance, MessageStore, Scheduler, WorkerHeartbeats, type NewMessage } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('store-retention');
const keyspace = new Keyspace({ prefix, partitions: 3 });
const RETENTION_MS = 60_000;
let redis: Redis;
let scheduler: Scheduler;
let store: MessageStore;
let maintenance: Maintenance;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: 1000, retentionMs: RETENTION_MS });
  store = scheduler.store;
  maintenance = new Maintenance(redis, keyspace, 1000, RETENTION_MS);
});
afterAll(async () => {
  await scheduler.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  recipient: '+5511999999999',
  channel: 'whatsapp',
  sendAt: Date.now() - 1000,
  message: 'Hello from the API!',
  ...over,
});

async function schedule(tenant: string, over: Partial<NewMessage> = {}, on = scheduler) {
  const now = Date.now();
  const result = await on.schedule(tenant, message(over), now);
  if (!result.ok) throw new Error(result.reason);
  return result.record;
}

async function finish(tenant: string, outcome: 'delivered' | 'failed' | 'canceled', now: number) {
  const { id } = await schedule(tenant, outcome === 'canceled' ? { sendAt: Date.now() + 60_000 } : {});
  if (outcome === 'canceled') expect((await store.cancel(tenant, id, now)).ok).toBe(true);
  else {
    expect((await store.claim(id, now)).outcome).toBe('claimed');
    if (outcome === 'delivered') expect(await store.markDelivered(id, now, 'SM1', 3)).not.toBeNull();
    else expect(await store.markFailed(id, now, 'INVALID_NUMBER: no')).not.toBeNull();
  }
  return id;
}

const sweep = async (now: number) => {
  let expired = 0;
  for (const tag of keyspace.allTags()) expired += (await maintenance.expire(tag, now, 2)).expired;
  return expired;
};
const listed = async (tenant: string, status: 'delivered' | 'failed' | 'canceled', filter = {}) =>
  (await store.list(tenant, status, { limit: 100, ...filter })).messages.map((m) => m.id);

it('deletes delivered, failed and canceled records once their retention has passed, from every index', async () => {
  const now = Date.now();
  const ids = {
    delivered: await finish('keep', 'delivered', now),
    failed: await finish('keep', 'failed', now),
    canceled: await finish('keep', 'canceled', now),
  };
  expect(await sweep(now + RETENTION_MS - 1)).toBe(0);
  for (const [status, id] of Object.entries(ids)) {
    expect(await store.get('keep', id)).toMatchObject({ status });
    expect(await listed('keep', status as 'failed')).toContain(id);
  }

  // batches of 2 per partition call: the sweeper's loop is what empties them
  let expired = 0;
  for (let round = 0; round < 3; round++) expired += await sweep(now + RETENTION_MS);
  expect(expired).toBe(3);
  for (const [status, id] of Object.entries(ids)) {
    expect(await store.get('keep', id)).toBeNull();
    for (const filter of [{}, { channel: 'whatsapp' }, { recipient: '5511999999999' }]) {
      expect(await listed('keep', status as 'failed', filter)).toEqual([]);
    }
  }
  const leftovers = [];
  for (const tag of keyspace.allTags()) {
    leftovers.push(...(await redis.keys(`${tag}:t:keep:*`)), ...(await redis.zrange(keyspace.expiring(tag), 0, -1)));
  }
  expect(leftovers).toEqual([]);
});

it('a failed message retried leaves the expiry set and is not deleted', async () => {
  const now = Date.now();
  const id = await finish('retry', 'failed', now);
  expect(await redis.zscore(keyspace.expiring(keyspace.tagOf(id)), id)).toBe(String(now + RETENTION_MS));
  expect((await store.rescheduleFailed('retry', id, now + 1, 100)).ok).toBe(true);
  expect(await redis.zscore(keyspace.expiring(keyspace.tagOf(id)), id)).toBeNull();
  await sweep(now + 10 * RETENTION_MS);
  expect(await store.get('retry', id)).toMatchObject({ status: 'scheduled' });
});

it('reads fleet-wide counts and the lateness histogram summed over partitions', async () => {
  const statsKeys = new Keyspace({ prefix: `${prefix}-stats`, partitions: 4 });
  const fresh = await Scheduler.create(redis, { keyspace: statsKeys, eventsMaxLen: 1000 });
  const stats = new FleetStats(redis, statsKeys);
  const now = Date.now();
  const latenesses = [0, 3, 7, 120, 999_999];
  for (const lateness of latenesses) {
    const { id } = await schedule('s', { channel: 'sms' }, fresh);
    await fresh.claim(id, now);
    await fresh.deliver(id, now, 'SM', lateness);
  }
  await fresh.close();
  const counts = await stats.outcomeCounts();
  expect(Object.fromEntries(counts)).toEqual({ 'scheduled:sms': 5, 'delivered:sms': 5 });
  const histogram = await stats.latenessHistogram();
  expect(histogram.count).toBe(5);
  expect(histogram.sumMs).toBe(latenesses.reduce((a, b) => a + b));
  expect([...histogram.buckets.keys()]).toEqual([...LATENESS_BUCKETS_MS, Infinity]);
  expect(histogram.buckets.get(1)).toBe(1);
  expect(histogram.buckets.get(5)).toBe(1);
  expect(histogram.buckets.get(10)).toBe(1);
  expect(histogram.buckets.get(250)).toBe(1);
  expect(histogram.buckets.get(Infinity)).toBe(1);
  await deletePrefix(`${prefix}-stats`);
});

it('counts workers by their last heartbeat and forgets one that stops', async () => {
  const heartbeats = new WorkerHeartbeats(redis, keyspace);
  const now = Date.now();
  await heartbeats.beat('a', now - 60_000);
  await heartbeats.beat('b', now);
  expect(await heartbeats.countSince(now - 30_000)).toBe(1);
  expect(await heartbeats.countSince(now - 90_000)).toBe(2);
  await heartbeats.remove('b');
  expect(await heartbeats.countSince(now - 30_000)).toBe(0);
});
