import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Keyspace, MessageStore } from '@punctual/store';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { repairScheduledCounts } from '../src/reconciler.js';

const prefix = uniquePrefix('sched-counter');
const log = pino({ level: 'silent' });
let redis: Redis;
let store: MessageStore;

async function schedule(tenant: string) {
  const now = Date.now();
  expect(await store.reserveScheduled(tenant, 100)).toBe(true);
  return store.schedule(tenant, store.newMessageId(now), { recipient: '5511999999999', channel: 'sms', sendAt: now + 60_000, message: 'hi' }, now);
}

beforeAll(() => {
  redis = new Redis(redisUrl());
  store = new MessageStore(redis, { keyspace: new Keyspace({ prefix, partitions: 3 }), eventsMaxLen: 1000 });
});
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('scheduled-message counters', () => {
  it('corrects a drift seen twice in a row, relative to what happened meanwhile', async () => {
    for (let i = 0; i < 4; i++) await schedule('acme');
    for (let i = 0; i < 2; i++) await schedule('globex');
    // a crash between reserving a slot and scheduling leaves acme two too high; globex one too low
    await redis.incrby(store.keys.tenantScheduled('acme'), 2);
    await redis.decrby(store.keys.tenantScheduled('globex'), 1);

    const drifts = new Map<string, number>();
    expect(await repairScheduledCounts(store, drifts, log)).toBe(0);
    // a message scheduled between the passes is counted on both sides: the drift stays the same
    await schedule('acme');
    expect(await repairScheduledCounts(store, drifts, log)).toBe(2);
    expect(await store.scheduledCount('acme')).toBe(5);
    expect(await store.scheduledCount('globex')).toBe(2);
    expect(await repairScheduledCounts(store, drifts, log)).toBe(0);
  });

  it('leaves a difference alone when it changes between passes (operations in flight)', async () => {
    await redis.incrby(store.keys.tenantScheduled('initech'), 1);
    const drifts = new Map<string, number>();
    expect(await repairScheduledCounts(store, drifts, log)).toBe(0);
    await redis.incrby(store.keys.tenantScheduled('initech'), 1);
    expect(await repairScheduledCounts(store, drifts, log)).toBe(0);
    expect(await store.scheduledCount('initech')).toBe(2);
    expect(await repairScheduledCounts(store, drifts, log)).toBe(1);
    expect(await store.scheduledCount('initech')).toBe(0);
  });
});
