import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, Scheduler, startRedisServer, type NewMessage, type SpawnedRedis } from '../src/index.js';
import { keysOfPrefix, uniquePrefix } from '../../../test-support/redis.js';

/**
 * Every transition checks everything before its first write: forced to fail at the first point
 * it can (a record or a patch Lua cannot decode, Redis out of memory), it leaves the record, the
 * lists, the due and sending sets, the counters, the feed and the jobs exactly as they were.
 */
const prefix = uniquePrefix('store-atomic');
const keyspace = new Keyspace({ prefix, partitions: 1 });
let server: SpawnedRedis;
let redis: Redis;
let scheduler: Scheduler;

beforeAll(async () => {
  // a server of our own: the OOM case lowers its maxmemory
  server = await startRedisServer();
  redis = new Redis(server.url);
  scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: 1000, retentionMs: 60_000, maxScheduledPerTenant: 100 });
});
afterAll(async () => {
  await scheduler.close();
  redis.disconnect();
  await server.stop();
});

const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  recipient: '+5511999999999',
  channel: 'whatsapp',
  sendAt: Date.now() + 60_000,
  message: 'Hello',
  ...over,
});

async function schedule(over: Partial<NewMessage> = {}) {
  const result = await scheduler.schedule('acme', message(over), Date.now());
  if (!result.ok) throw new Error(result.reason);
  return result.record;
}

/** Every key of the prefix with its serialized value. */
async function snapshot(): Promise<Map<string, string>> {
  const keys = (await keysOfPrefix(redis, prefix)).sort();
  const values = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
  return new Map(keys.map((k, i) => [k, values[i]?.toString('hex') ?? '']));
}

async function expectUnchanged(attempt: () => Promise<unknown>) {
  const before = await snapshot();
  await expect(attempt()).rejects.toThrow();
  expect(await snapshot()).toEqual(before);
}

describe('a transition that fails at its first error point changes nothing', () => {
  it('a record Lua cannot decode: every transition of it', async () => {
    // a scheduled, a sending and a failed message beside the broken one, so every set is in play
    await schedule();
    const sending = await schedule({ sendAt: Date.now() });
    await scheduler.claim(sending.id, Date.now());
    const failed = await schedule({ sendAt: Date.now() });
    await scheduler.claim(failed.id, Date.now());
    await scheduler.fail(failed.id, Date.now(), 'PERMANENT: test');

    const broken = await schedule({ sendAt: Date.now() });
    await redis.set(keyspace.record(broken.id), '{"id":"' + broken.id + '","status":');
    const now = Date.now();
    const store = scheduler.store;
    await expectUnchanged(() => store.update('acme', broken.id, { message: 'changed' }, now));
    await expectUnchanged(() => store.cancel('acme', broken.id, now));
    await expectUnchanged(() => store.claim(broken.id, now));
    await expectUnchanged(() => store.markDelivered(broken.id, now, 'SM1', 1));
    await expectUnchanged(() => store.markFailed(broken.id, now, 'x'));
    await expectUnchanged(() => store.markRetrying(broken.id, now, 'x', now + 1000));
    await expectUnchanged(() => store.releaseClaim(broken.id, now, 'x'));
    await expectUnchanged(() => store.rescheduleFailed('acme', broken.id, now, 100));
    await redis.del(keyspace.record(broken.id));
  });

  it('a patch Lua cannot decode, even past the scheduler guard', async () => {
    const record = await schedule();
    // the API answers 400 and the scheduler refuses before Redis; the script itself is the last line
    await expectUnchanged(() => scheduler.update('acme', record.id, { message: 'x\ud800' }, Date.now()));
    await expectUnchanged(() => scheduler.store.update('acme', record.id, { message: 'x\ud800' }, Date.now()));
    await expectUnchanged(() => scheduler.schedule('acme', message({ message: 'x\udc00y' }), Date.now()));
  });

  it('a script cache Redis lost (SCRIPT FLUSH) inside the schedule MULTI: still stored whole, once', async () => {
    await schedule();
    await redis.script('FLUSH');
    const record = await schedule();
    expect(await scheduler.store.get('acme', record.id)).toEqual(record);
    expect(await scheduler.deliveries.of(record.id).getJob(record.id)).toBeDefined();
    expect((await scheduler.store.list('acme', 'scheduled', { limit: 500 })).messages.filter((m) => m.id === record.id)).toHaveLength(1);
  });

  it('Redis out of memory: a new message (record, lists, feed, job) is refused whole', async () => {
    const scheduled = await schedule();
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    await redis.config('SET', 'maxmemory', String(Math.floor(used / 2)));
    try {
      await expectUnchanged(() => scheduler.schedule('acme', message(), Date.now()));
      // Redis checks memory at a script's first write only: a transition that starts by leaving
      // a list (ZREM frees memory) then runs to its end, whole, so it is never half done either
      expect((await scheduler.cancel('acme', scheduled.id, Date.now())).ok).toBe(true);
      expect((await scheduler.store.list('acme', 'canceled', { limit: 10 })).messages.map((m) => m.id)).toContain(scheduled.id);
      expect((await scheduler.store.list('acme', 'scheduled', { limit: 100 })).messages.map((m) => m.id)).not.toContain(scheduled.id);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
  });

  it('Redis out of memory: a batch (records, lists, counts, feed, jobs) is refused whole', async () => {
    const items = [0, 1, 2].map((index) => ({ index, message: message() }));
    // a first batch loads the script on the connection (a MULTI refused whole would not)
    await scheduler.scheduleBatch('acme', scheduler.store.newMessageId(), items, Date.now());
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    await redis.config('SET', 'maxmemory', String(Math.floor(used / 2)));
    try {
      await expectUnchanged(() => scheduler.scheduleBatch('acme', scheduler.store.newMessageId(), items, Date.now()));
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
  });

  it('a batch cancel that meets a record Lua cannot decode cancels none of the partition', async () => {
    const batchId = scheduler.store.newMessageId();
    const items = [0, 1, 2].map((index) => ({ index, message: message() }));
    const outcomes = await scheduler.scheduleBatch('acme', batchId, items, Date.now());
    const ids = outcomes.map((o) => (o.ok ? o.record.id : ''));
    const json = await redis.get(keyspace.record(ids[2]!));
    await redis.set(keyspace.record(ids[2]!), '{"id":"' + ids[2] + '","status":');
    await expectUnchanged(() => scheduler.cancelBatch('acme', batchId, Date.now()));
    await redis.set(keyspace.record(ids[2]!), json!);
    expect(await scheduler.cancelBatch('acme', batchId, Date.now())).toBe(3);
  });
});
