import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, MessageStore, Scheduler, decodeCursor, encodeCursor, type NewMessage } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('store');
let redis: Redis;
let scheduler: Scheduler;
let store: MessageStore;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace: new Keyspace({ prefix, partitions: 1 }), eventsMaxLen: 10_000 });
  store = scheduler.store;
});
afterAll(async () => {
  await scheduler.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  recipient: '5511999999999',
  channel: 'sms',
  sendAt: Date.now() + 60_000,
  message: 'hello',
  ...over,
});

async function schedule(tenant: string, over: Partial<NewMessage> = {}) {
  const now = Date.now();
  const result = await scheduler.schedule(tenant, message(over), now);
  if (!result.ok) throw new Error(result.reason);
  return result.record;
}

async function pageThrough(tenant: string, status: 'scheduled' | 'canceled', limit: number, extra = {}) {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.list(tenant, status, { limit, ...extra, ...(cursor ? { cursor: decodeCursor(cursor)! } : {}) });
    ids.push(...page.messages.map((m) => m.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

describe('MessageStore', () => {
  it('stores the full record and reads it back for its tenant only', async () => {
    const record = await schedule('acme', { metadata: { order: 42 }, callbackUrl: 'https://example.com/cb' });
    expect(record).toMatchObject({ status: 'scheduled', attempts: 0, version: 1, metadata: { order: 42 } });
    expect(await store.get('acme', record.id)).toEqual(record);
    expect(await store.get('other', record.id)).toBeNull();
  });

  it('pages through equal sendAt values in (sendAt, id) order with no duplicate or gap', async () => {
    const sendAt = Date.now() + 3_600_000;
    const created = [];
    for (let i = 0; i < 25; i++) created.push(await schedule('paging', { sendAt: sendAt + (i % 3) }));
    const expected = [...created]
      .sort((a, b) => a.sendAt - b.sendAt || (a.id < b.id ? -1 : 1))
      .map((m) => m.id);
    expect(await pageThrough('paging', 'scheduled', 4)).toEqual(expected);
  });

  it('keeps paging consistent while messages are added between pages', async () => {
    const base = Date.now() + 7_200_000;
    const first = [];
    for (let i = 0; i < 10; i++) first.push(await schedule('growing', { sendAt: base + i * 10 }));
    const seen: string[] = [];
    const before: string[] = [];
    const after: string[] = [];
    let cursor: string | null = null;
    let round = 0;
    do {
      const page = await store.list('growing', 'scheduled', { limit: 3, ...(cursor ? { cursor: decodeCursor(cursor)! } : {}) });
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.nextCursor;
      // one that sorts before the boundary (not on a later page) and one after it (must be)
      before.push((await schedule('growing', { sendAt: base - 1000 - round })).id);
      after.push((await schedule('growing', { sendAt: base + 1000 + round })).id);
      round++;
    } while (cursor && round < 50);
    expect(new Set(seen).size).toBe(seen.length);
    for (const m of first) expect(seen).toContain(m.id);
    expect(after.slice(0, -1).every((id) => seen.includes(id))).toBe(true);
    expect(before.some((id) => seen.includes(id))).toBe(false);
  });

  it('filters by channel, recipient and time window', async () => {
    const t = Date.now() + 10_000_000;
    const a = await schedule('filters', { channel: 'sms', recipient: '+15550001111', sendAt: t });
    const b = await schedule('filters', { channel: 'whatsapp', recipient: '15550001111', sendAt: t + 1 });
    const c = await schedule('filters', { channel: 'whatsapp', recipient: '15550002222', sendAt: t + 2 });
    const ids = async (o: object) => (await store.list('filters', 'scheduled', { limit: 100, ...o })).messages.map((m) => m.id);
    expect(await ids({ channel: 'whatsapp' })).toEqual([b.id, c.id]);
    expect(await ids({ recipient: '+15550001111' })).toEqual([a.id, b.id]);
    expect(await ids({ recipient: '15550001111', channel: 'sms' })).toEqual([a.id]);
    expect(await ids({ from: t + 1, to: t + 1 })).toEqual([b.id]);
  });

  it('lists canceled newest first and pages backwards by the same boundary', async () => {
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await schedule('history'));
    for (const m of made) expect((await store.cancel('history', m.id, Date.now())).ok).toBe(true);
    const ids = await pageThrough('history', 'canceled', 2);
    expect(ids).toEqual(made.map((m) => m.id).reverse());
  });

  it('refuses transitions from the wrong state or tenant', async () => {
    const m = await schedule('rules');
    expect(await store.cancel('intruder', m.id, Date.now())).toEqual({ ok: false, reason: 'not_found', detail: undefined });
    expect((await store.cancel('rules', m.id, Date.now())).ok).toBe(true);
    expect(await store.cancel('rules', m.id, Date.now())).toMatchObject({ ok: false, reason: 'not_scheduled', detail: 'canceled' });
    expect(await store.update('rules', m.id, { message: 'x' }, Date.now())).toMatchObject({ ok: false, reason: 'not_scheduled' });
    expect(await store.claim(m.id, Date.now())).toEqual({ outcome: 'final', status: 'canceled' });
  });

  it('claims only a due message, once per attempt', async () => {
    const m = await schedule('claims', { sendAt: Date.now() + 60_000 });
    expect(await store.claim(m.id, Date.now())).toEqual({ outcome: 'early', sendAt: m.sendAt });
    const claimed = await store.claim(m.id, m.sendAt);
    expect(claimed).toMatchObject({ outcome: 'claimed', record: { status: 'sending', attempts: 1 } });
    const delivered = await store.markDelivered(m.id, m.sendAt + 5, 'SM123', 5);
    expect(delivered).toMatchObject({ tenant: 'claims', record: { status: 'delivered', providerMessageId: 'SM123', attempts: 1 } });
    expect(await store.markFailed(m.id, Date.now(), 'late')).toBeNull();
    expect(await store.claim(m.id, Date.now())).toEqual({ outcome: 'final', status: 'delivered' });
    expect((await store.list('claims', 'scheduled', { limit: 10 })).messages).toEqual([]);
  });

  it('gives a rate-limited claim back without counting the attempt', async () => {
    const m = await schedule('release', { sendAt: Date.now() });
    await store.claim(m.id, Date.now());
    const released = await store.releaseClaim(m.id, Date.now(), '20429: Too Many Requests');
    expect(released?.record).toMatchObject({ status: 'sending', attempts: 0, lastError: '20429: Too Many Requests', version: 3 });
    expect(await store.claim(m.id, Date.now())).toMatchObject({ outcome: 'claimed', record: { attempts: 1 } });
    await store.markDelivered(m.id, Date.now(), 'SM1', 0);
    expect(await store.releaseClaim(m.id, Date.now(), 'late')).toBeNull();
  });

  it('round-trips cursors and rejects forged ones', () => {
    const cursor = encodeCursor({ score: 1735689600000, id: '01J0000000000000000000000A' });
    expect(decodeCursor(cursor)).toEqual({ score: 1735689600000, id: '01J0000000000000000000000A' });
    for (const bad of ['', 'abc', '!!!', Buffer.from('1:short').toString('base64url'), Buffer.from('x:01J0000000000000000000000A').toString('base64url')]) {
      expect(decodeCursor(bad)).toBeNull();
    }
  });
});
