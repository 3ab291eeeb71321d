import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, Scheduler, batchMessageId, decodeCursor, type BatchItem, type NewMessage } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const RETENTION_MS = 3_600_000;
const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  recipient: '5511999999999',
  channel: 'sms',
  sendAt: Date.now() + 60_000,
  message: 'hello',
  ...over,
});
const items = (count: number, over: Partial<NewMessage> = {}): BatchItem[] =>
  Array.from({ length: count }, (_, index) => ({ index, message: message({ recipient: `55119${String(index).padStart(8, '0')}`, ...over }) }));
const zero = { scheduled: 0, sending: 0, delivered: 0, failed: 0, canceled: 0 };

/** A scheduler on its own prefix with `partitions` partitions and a cap. */
function useScheduler(name: string, partitions: number, maxScheduledPerTenant?: number) {
  const ctx = { prefix: uniquePrefix(name) } as { prefix: string; redis: Redis; scheduler: Scheduler; keys: Keyspace };
  beforeAll(async () => {
    ctx.redis = new Redis(redisUrl());
    ctx.keys = new Keyspace({ prefix: ctx.prefix, partitions });
    ctx.scheduler = await Scheduler.create(ctx.redis, { keyspace: ctx.keys, eventsMaxLen: 10_000, retentionMs: RETENTION_MS, maxScheduledPerTenant });
  });
  afterAll(async () => {
    await ctx.scheduler.close();
    ctx.redis.disconnect();
    await deletePrefix(ctx.prefix);
  });
  return ctx;
}

async function scheduleBatch(scheduler: Scheduler, tenant: string, batch: BatchItem[], batchId = scheduler.store.newMessageId()) {
  const outcomes = await scheduler.scheduleBatch(tenant, batchId, batch, Date.now());
  const ids = outcomes.map((o) => {
    if (!o.ok) throw new Error(`not scheduled: ${o.reason}`);
    return o.record.id;
  });
  return { batchId, ids };
}

describe('a batch on one partition', () => {
  const ctx = useScheduler('store-batch', 1, 8);

  it('stores each item as a single POST would, with its batchId, a delayed job and the batch counts', async () => {
    const { batchId, ids } = await scheduleBatch(ctx.scheduler, 'acme', items(3));
    expect(ids).toEqual([0, 1, 2].map((i) => batchMessageId(batchId, i)));
    for (const [i, id] of ids.entries()) {
      expect(await ctx.scheduler.store.get('acme', id)).toMatchObject({ status: 'scheduled', batchId, recipient: `55119${String(i).padStart(8, '0')}`, version: 1 });
      expect(await ctx.scheduler.deliveries.of(id).getJobState(id)).toBe('delayed');
    }
    expect(await ctx.scheduler.batches.summary('acme', batchId)).toEqual({
      id: batchId,
      createdAt: expect.any(String),
      total: 3,
      counts: { ...zero, scheduled: 3 },
    });
    // another tenant's view of the same id: no such batch
    expect(await ctx.scheduler.batches.summary('other', batchId)).toBeNull();
    expect(await ctx.scheduler.cancelBatch('other', batchId, Date.now())).toBeNull();
    await ctx.scheduler.cancelBatch('acme', batchId, Date.now());
  });

  it('counts the tenant cap per item, in order: the items past it are refused and leave no job', async () => {
    const { scheduler } = ctx;
    const single = await scheduler.schedule('capped', message(), Date.now());
    expect(single.ok).toBe(true);
    const batchId = scheduler.store.newMessageId();
    const outcomes = await scheduler.scheduleBatch('capped', batchId, items(10), Date.now());
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.reason))).toEqual([...Array(7).fill('ok'), 'quota', 'quota', 'quota']);
    for (const index of [7, 8, 9]) {
      const id = batchMessageId(batchId, index);
      expect(await scheduler.store.get('capped', id)).toBeNull();
      expect(await scheduler.deliveries.of(id).getJob(id)).toBeUndefined();
    }
    expect(await scheduler.batches.summary('capped', batchId)).toMatchObject({ total: 7, counts: { ...zero, scheduled: 7 } });
    expect(await scheduler.store.scheduledCount('capped')).toBe(8);
  });

  it('refuses at the script when the tenant filled up between the count and the write', async () => {
    const { scheduler } = ctx;
    // both count 0 scheduled first; the script sees the tenant's list as it is at the write
    const batchIds = [scheduler.store.newMessageId(), scheduler.store.newMessageId()];
    const outcomes = await Promise.all(batchIds.map((batchId) => scheduler.scheduleBatch('racing', batchId, items(6), Date.now())));
    expect(outcomes.flat().filter((o) => o.ok)).toHaveLength(8);
    expect(await scheduler.store.scheduledCount('racing')).toBe(8);
    for (const [b, batchId] of batchIds.entries()) {
      for (const [index, outcome] of outcomes[b]!.entries()) {
        const id = batchMessageId(batchId, index);
        expect(await scheduler.deliveries.of(id).getJob(id)).toEqual(outcome.ok ? expect.anything() : undefined);
      }
    }
  });

  it('a batch whose items were all refused still exists, empty', async () => {
    const batchId = ctx.scheduler.store.newMessageId();
    expect(await ctx.scheduler.scheduleBatch('acme', batchId, [], Date.now())).toEqual([]);
    expect(await ctx.scheduler.batches.summary('acme', batchId)).toMatchObject({ total: 0, counts: zero });
    expect(await ctx.redis.pttl(ctx.keys.batch(ctx.keys.tag(0), 'acme', batchId))).toBeGreaterThan(RETENTION_MS - 60_000);
  });

  it('written again under the same id (an idempotent retry), finds its items instead of doubling them', async () => {
    const { scheduler } = ctx;
    const batch = items(3);
    const { batchId, ids } = await scheduleBatch(scheduler, 'again', batch.slice(0, 2));
    const again = await scheduler.scheduleBatch('again', batchId, batch, Date.now());
    expect(again.map((o) => o.ok && o.record.id)).toEqual([...ids, batchMessageId(batchId, 2)]);
    expect(await scheduler.batches.summary('again', batchId)).toMatchObject({ total: 3, counts: { ...zero, scheduled: 3 } });
    expect(await scheduler.store.scheduledCount('again')).toBe(3);
  });
});

describe('batch counts follow every transition', () => {
  const ctx = useScheduler('store-batch-counts', 1);

  it('scheduled → sending → delivered, a retried attempt, failed → scheduled again, canceled one by one and by batch', async () => {
    const { scheduler, redis, keys } = ctx;
    const now = Date.now();
    const batch = items(6);
    for (const item of batch.slice(0, 3)) item.message.sendAt = now - 1000;
    const { batchId, ids } = await scheduleBatch(scheduler, 'acme', batch);
    const counts = async () => (await scheduler.batches.summary('acme', batchId))!.counts;
    const countsKey = keys.batch(keys.tag(0), 'acme', batchId);
    expect(await counts()).toEqual({ ...zero, scheduled: 6 });

    expect((await scheduler.claim(ids[0]!, Date.now())).outcome).toBe('claimed');
    expect(await counts()).toEqual({ ...zero, scheduled: 5, sending: 1 });
    // a transient failure and a rate-limited claim stay sending: no change of count
    await scheduler.retryLater(ids[0]!, Date.now(), 'NETWORK: reset', Date.now());
    await scheduler.release(ids[0]!, Date.now(), 'RATE_LIMITED');
    expect((await scheduler.claim(ids[0]!, Date.now())).outcome).toBe('claimed');
    expect(await counts()).toEqual({ ...zero, scheduled: 5, sending: 1 });
    await scheduler.deliver(ids[0]!, Date.now(), 'SM1', 5);
    expect(await counts()).toEqual({ ...zero, scheduled: 5, delivered: 1 });

    await scheduler.claim(ids[1]!, Date.now());
    await scheduler.fail(ids[1]!, Date.now(), 'PERMANENT: invalid number');
    expect(await counts()).toEqual({ ...zero, scheduled: 4, delivered: 1, failed: 1 });
    expect((await scheduler.retry('acme', ids[1]!, Date.now())).ok).toBe(true);
    expect(await counts()).toEqual({ ...zero, scheduled: 5, delivered: 1 });

    expect((await scheduler.cancel('acme', ids[2]!, Date.now())).ok).toBe(true);
    expect(await counts()).toEqual({ ...zero, scheduled: 4, delivered: 1, canceled: 1 });
    // a PUT (unindex + index) changes no count but keeps the batch's list in step
    const later = Date.now() + 120_000;
    expect((await scheduler.update('acme', ids[3]!, { sendAt: later }, Date.now())).ok).toBe(true);
    expect(await redis.zscore(keys.batchScheduled(keys.tag(0), 'acme', batchId), ids[3]!)).toBe(String(later));
    expect(await counts()).toEqual({ ...zero, scheduled: 4, delivered: 1, canceled: 1 });
    expect(await redis.pttl(countsKey)).toBe(-1);

    expect(await scheduler.cancelBatch('acme', batchId, Date.now())).toBe(4);
    expect(await counts()).toEqual({ ...zero, delivered: 1, canceled: 5 });
    for (const id of ids.slice(1)) expect((await scheduler.store.get('acme', id))!.status).toBe('canceled');
    for (const id of ids.slice(1)) expect(await scheduler.deliveries.of(id).getJob(id)).toBeUndefined();
    expect(await scheduler.cancelBatch('acme', batchId, Date.now())).toBe(0);
    expect((await scheduler.batches.summary('acme', batchId))!.total).toBe(6);
  });

  it('a batch DELETE cancels each scheduled message as a DELETE of it would: cancelReason api', async () => {
    const { scheduler } = ctx;
    const { batchId, ids } = await scheduleBatch(scheduler, 'reasons', items(3));
    expect(await scheduler.cancelBatch('reasons', batchId, Date.now())).toBe(3);
    for (const id of ids) {
      expect(await scheduler.store.get('reasons', id)).toMatchObject({ status: 'canceled', cancelReason: 'api', canceledAt: expect.any(String), version: 2 });
    }
  });

  it('the counts go after the retention once every message of the batch is final, and stay while one is scheduled again', async () => {
    const { scheduler, redis, keys } = ctx;
    const { batchId, ids } = await scheduleBatch(scheduler, 'acme', items(2, { sendAt: Date.now() - 1000 }));
    const countsKey = keys.batch(keys.tag(0), 'acme', batchId);
    await scheduler.claim(ids[0]!, Date.now());
    await scheduler.deliver(ids[0]!, Date.now(), 'SM1', 1);
    expect(await redis.pttl(countsKey)).toBe(-1);
    await scheduler.claim(ids[1]!, Date.now());
    await scheduler.fail(ids[1]!, Date.now(), 'PERMANENT: no');
    expect(await redis.pttl(countsKey)).toBeGreaterThan(RETENTION_MS - 60_000);
    await scheduler.retry('acme', ids[1]!, Date.now());
    expect(await redis.pttl(countsKey)).toBe(-1);
    await scheduler.cancel('acme', ids[1]!, Date.now());
    expect(await redis.pttl(countsKey)).toBeGreaterThan(RETENTION_MS - 60_000);
  });
});

describe('a batch over three partitions', () => {
  const ctx = useScheduler('store-batch-partitions', 3);

  it('spreads its items, sums its counts, lists and cancels them in every partition', async () => {
    const { scheduler, keys } = ctx;
    const base = Date.now() + 600_000;
    const batch = items(40).map((item, i) => ({ ...item, message: { ...item.message, sendAt: base + (i % 7) * 1000, channel: i % 2 ? ('whatsapp' as const) : ('sms' as const) } }));
    const { batchId, ids } = await scheduleBatch(scheduler, 'acme', batch);
    const partitions = new Set(ids.map((id) => keys.partitionOf(id)));
    expect(partitions.size).toBe(3);
    expect(await scheduler.batches.summary('acme', batchId)).toMatchObject({ total: 40, counts: { ...zero, scheduled: 40 } });

    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await scheduler.store.list('acme', 'scheduled', { limit: 7, batchId, ...(cursor ? { cursor: decodeCursor(cursor)! } : {}) });
      listed.push(...page.messages.map((m) => m.id));
      cursor = page.nextCursor;
    } while (cursor);
    const bySendAt = [...ids].sort((a, b) => {
      const [sa, sb] = [batch[ids.indexOf(a)]!.message.sendAt, batch[ids.indexOf(b)]!.message.sendAt];
      return sa - sb || (a < b ? -1 : 1);
    });
    expect(listed).toEqual(bySendAt);
    const whatsapp = await scheduler.store.list('acme', 'scheduled', { limit: 100, batchId, channel: 'whatsapp' });
    expect(whatsapp.messages.map((m) => m.id).sort()).toEqual(ids.filter((_, i) => i % 2).sort());

    await scheduler.cancel('acme', ids[5]!, Date.now());
    expect(await scheduler.cancelBatch('acme', batchId, Date.now())).toBe(39);
    expect(await scheduler.batches.summary('acme', batchId)).toMatchObject({ total: 40, counts: { ...zero, canceled: 40 } });
    expect((await scheduler.store.list('acme', 'scheduled', { limit: 100, batchId })).messages).toEqual([]);
  });
});
