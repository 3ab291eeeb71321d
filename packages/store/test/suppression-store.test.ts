import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, type Channel } from '@punctual/shared';
import {
  Keyspace,
  Scheduler,
  SUPPRESSION_REPAIR_GRACE_MS,
  applyInboundKeyword,
  decodeSuppressionCursor,
  type NewMessage,
} from '../src/index.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const PARTITIONS = 3;
const prefix = uniquePrefix('suppressions');
const keyspace = new Keyspace({ prefix, partitions: PARTITIONS });
let redis: Redis;
let scheduler: Scheduler;
let suppressions: Scheduler['suppressions'];
let feeds: FeedWatcher[];

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: 100_000 });
  suppressions = scheduler.suppressions;
  feeds = await Promise.all(keyspace.allTags().map((_, p) => FeedWatcher.start(prefix, redisUrl(), p)));
});
afterAll(async () => {
  await Promise.all(feeds.map((feed) => feed.close()));
  await scheduler.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

let phone = 5511900000000;
/** A recipient no other test uses, in its plain spelling. */
const newRecipient = () => String(++phone);

const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  recipient: '5511999999999',
  channel: 'sms',
  sendAt: Date.now() + 3_600_000,
  message: 'hello',
  ...over,
});

async function schedule(tenant: string, over: Partial<NewMessage> = {}) {
  const result = await scheduler.schedule(tenant, message(over), Date.now());
  if (!result.ok) throw new Error(result.reason);
  return result.record;
}

/** Schedules until messages to the recipient exist in every partition. */
async function scheduleInEveryPartition(tenant: string, over: Partial<NewMessage>) {
  const made = [];
  const partitions = new Set<number>();
  while (partitions.size < PARTITIONS || made.length < 6) {
    const record = await schedule(tenant, over);
    made.push(record);
    partitions.add(keyspace.partitionOf(record.id));
  }
  return made;
}

/** Lets `n` turns of the event loop pass (I/O included). */
async function ticks(n: number) {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

const get = async (tenant: string, id: string) => (await scheduler.store.get(tenant, id))!;
const feedOf = (id: string) => feeds[keyspace.partitionOf(id)]!;

describe('opting out (the deployment list)', () => {
  it('cancels every still-scheduled message to the recipient, of every tenant, in every partition, whatever the spelling', async () => {
    const digits = newRecipient();
    const a = await scheduleInEveryPartition('tenant-a', { recipient: `+${digits}` });
    const b = await scheduleInEveryPartition('tenant-b', { recipient: digits });
    const otherChannel = await schedule('tenant-a', { recipient: digits, channel: 'whatsapp' });
    const otherRecipient = await schedule('tenant-a', { recipient: newRecipient() });

    const result = await suppressions.optOut({ channel: 'sms', recipient: `+${digits}` }, 'inbound', Date.now());
    expect(result).toMatchObject({ created: true, canceled: a.length + b.length, suppression: { channel: 'sms', recipient: digits, scope: 'deployment', source: 'inbound' } });

    for (const [tenant, made] of [['tenant-a', a], ['tenant-b', b]] as const) {
      for (const m of made) {
        expect(await get(tenant, m.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out', version: 2, canceledAt: expect.any(String) });
        const event = await feedOf(m.id).waitFor('messageDeleted', m.id);
        expect(event).toMatchObject({ tenant, data: { status: 'canceled', cancelReason: 'opted_out' } });
      }
    }
    expect((await get('tenant-a', otherChannel.id)).status).toBe('scheduled');
    expect((await get('tenant-a', otherRecipient.id)).status).toBe('scheduled');
    // their jobs are gone, and nothing of the recipient is left in the index
    for (const m of [...a, ...b]) expect(await scheduler.deliveries.of(m.id).getJob(m.id)).toBeUndefined();
    for (const tag of keyspace.allTags()) expect(await redis.exists(keyspace.recipientIndex(tag, 'sms', digits))).toBe(0);
    // canceled lists show them, scheduled lists do not
    const canceled = await scheduler.store.list('tenant-b', 'canceled', { limit: 500, recipient: digits });
    expect(canceled.messages.map((m) => m.id).sort()).toEqual(b.map((m) => m.id).sort());
    expect((await scheduler.store.list('tenant-b', 'scheduled', { limit: 500, recipient: digits })).messages).toEqual([]);
  });

  it('refuses new messages, updates to the recipient and retries, in any spelling, until the recipient opts back in', async () => {
    const digits = newRecipient();
    const failed = await schedule('tenant-a', { recipient: digits, sendAt: Date.now() });
    await scheduler.claim(failed.id, Date.now());
    await scheduler.fail(failed.id, Date.now(), '30003: Unreachable');
    const elsewhere = await schedule('tenant-a', { recipient: newRecipient() });

    await suppressions.optOut({ channel: 'sms', recipient: digits }, 'inbound', Date.now());
    for (const recipient of [digits, `+${digits}`]) {
      for (const tenant of ['tenant-a', 'tenant-b']) {
        expect(await scheduler.schedule(tenant, message({ recipient }), Date.now())).toEqual({ ok: false, reason: 'opted_out', detail: 'deployment' });
      }
      expect(await scheduler.update('tenant-a', elsewhere.id, { recipient }, Date.now())).toEqual({ ok: false, reason: 'opted_out', detail: 'deployment' });
    }
    expect(await scheduler.retry('tenant-a', failed.id, Date.now())).toEqual({ ok: false, reason: 'opted_out', detail: 'deployment' });
    // the other channel is not suppressed
    expect((await scheduler.schedule('tenant-a', message({ recipient: digits, channel: 'whatsapp' }), Date.now())).ok).toBe(true);
    expect((await get('tenant-a', elsewhere.id)).version).toBe(1);

    expect(await suppressions.optIn({ channel: 'sms', recipient: `+${digits}` }, Date.now())).toBe(true);
    expect(await suppressions.optIn({ channel: 'sms', recipient: digits }, Date.now())).toBe(false);
    expect((await scheduler.schedule('tenant-b', message({ recipient: `+${digits}` }), Date.now())).ok).toBe(true);
    expect((await scheduler.update('tenant-a', elsewhere.id, { recipient: digits }, Date.now())).ok).toBe(true);
    expect((await scheduler.retry('tenant-a', failed.id, Date.now())).ok).toBe(true);
  });

  it('keeps the first entry when asked again, and leaves no trace for an opt-in of a number never suppressed', async () => {
    const digits = newRecipient();
    const first = await suppressions.optOut({ channel: 'whatsapp', recipient: digits }, 'provider', 1_700_000_000_000);
    const again = await suppressions.optOut({ channel: 'whatsapp', recipient: `+${digits}` }, 'inbound', Date.now());
    expect(first).toMatchObject({ created: true, suppression: { source: 'provider', createdAt: '2023-11-14T22:13:20.000Z' } });
    expect(again).toMatchObject({ created: false, canceled: 0, suppression: first.suppression });

    const never = newRecipient();
    expect(await suppressions.optIn({ channel: 'sms', recipient: never }, Date.now())).toBe(false);
    for (const tag of keyspace.allTags()) expect(await redis.hexists(keyspace.suppressionReplica(tag), `sms:${never}`)).toBe(0);
    expect(await redis.zcard(keyspace.suppressionJournal())).toBe(0);
  });

  it('counts new opt-outs by channel and source', async () => {
    const before = await suppressions.optOutCounts();
    const digits = newRecipient();
    await suppressions.optOut({ channel: 'sms', recipient: digits }, 'provider', Date.now());
    await suppressions.optOut({ channel: 'sms', recipient: digits }, 'provider', Date.now());
    await suppressions.optOut({ channel: 'sms', recipient: digits, tenant: 'tenant-a' }, 'api', Date.now());
    const after = await suppressions.optOutCounts();
    expect((after.get('sms:provider') ?? 0) - (before.get('sms:provider') ?? 0)).toBe(1);
    expect((after.get('sms:api') ?? 0) - (before.get('sms:api') ?? 0)).toBe(1);
  });
});

describe('applyInboundKeyword', () => {
  it('opts out on every opt-out keyword and back in on every opt-in keyword, for the channel the reply came on', async () => {
    for (const [i, stop] of OPT_OUT_KEYWORDS.entries()) {
      const start = OPT_IN_KEYWORDS[i % OPT_IN_KEYWORDS.length]!;
      const digits = newRecipient();
      const m = await schedule('tenant-a', { recipient: digits, channel: 'whatsapp' });
      expect(await applyInboundKeyword(suppressions, { channel: 'whatsapp', from: `whatsapp:+${digits}`, text: ` ${stop.toLowerCase()} ` })).toEqual({ keyword: 'opt_out', changed: true });
      expect(await get('tenant-a', m.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
      expect((await scheduler.schedule('tenant-b', message({ recipient: digits, channel: 'whatsapp' }), Date.now())).ok).toBe(false);
      expect((await scheduler.schedule('tenant-b', message({ recipient: digits, channel: 'sms' }), Date.now())).ok).toBe(true);
      expect(await applyInboundKeyword(suppressions, { channel: 'whatsapp', from: digits, text: stop })).toEqual({ keyword: 'opt_out', changed: false });

      expect(await applyInboundKeyword(suppressions, { channel: 'whatsapp', from: `+${digits}`, text: start })).toEqual({ keyword: 'opt_in', changed: true });
      expect((await scheduler.schedule('tenant-b', message({ recipient: digits, channel: 'whatsapp' }), Date.now())).ok).toBe(true);
      // a canceled message stays canceled
      expect((await get('tenant-a', m.id)).status).toBe('canceled');
    }
    for (const start of OPT_IN_KEYWORDS) {
      const digits = newRecipient();
      await applyInboundKeyword(suppressions, { channel: 'sms', from: digits, text: 'STOP' });
      expect(await applyInboundKeyword(suppressions, { channel: 'sms', from: digits, text: start.toLowerCase() })).toEqual({ keyword: 'opt_in', changed: true });
    }
  });

  it('does nothing for other text or a sender that is no phone number', async () => {
    const digits = newRecipient();
    const m = await schedule('tenant-a', { recipient: digits });
    for (const text of ['Stop it', 'STOP.', 'thanks', '']) {
      expect(await applyInboundKeyword(suppressions, { channel: 'sms', from: digits, text })).toEqual({ keyword: null, changed: false });
    }
    for (const from of ['MyBrand', '12345', '']) {
      expect(await applyInboundKeyword(suppressions, { channel: 'sms', from, text: 'STOP' })).toEqual({ keyword: null, changed: false });
    }
    expect((await get('tenant-a', m.id)).status).toBe('scheduled');
  });
});

describe("a tenant's own list", () => {
  it("cancels and refuses only that tenant's messages on that channel", async () => {
    const digits = newRecipient();
    const mine = await scheduleInEveryPartition('tenant-a', { recipient: digits });
    const mineOtherChannel = await schedule('tenant-a', { recipient: `+${digits}`, channel: 'whatsapp' });
    const theirs = await schedule('tenant-b', { recipient: digits });

    const result = await suppressions.optOut({ channel: 'sms', recipient: `+${digits}`, tenant: 'tenant-a' }, 'api', Date.now());
    expect(result).toMatchObject({ created: true, canceled: mine.length, suppression: { scope: 'tenant', source: 'api', recipient: digits } });
    for (const m of mine) expect(await get('tenant-a', m.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect((await get('tenant-a', mineOtherChannel.id)).status).toBe('scheduled');
    expect((await get('tenant-b', theirs.id)).status).toBe('scheduled');
    expect(await scheduler.schedule('tenant-a', message({ recipient: digits }), Date.now())).toEqual({ ok: false, reason: 'opted_out', detail: 'tenant' });
    expect((await scheduler.schedule('tenant-b', message({ recipient: `+${digits}` }), Date.now())).ok).toBe(true);

    expect(await suppressions.get('tenant-a', 'sms', `+${digits}`)).toMatchObject({ scope: 'tenant', recipient: digits });
    expect(await suppressions.get('tenant-b', 'sms', digits)).toBeNull();
    expect(await suppressions.optIn({ channel: 'sms', recipient: digits, tenant: 'tenant-b' }, Date.now())).toBe(false);
    expect(await suppressions.optIn({ channel: 'sms', recipient: digits, tenant: 'tenant-a' }, Date.now())).toBe(true);
    expect((await scheduler.schedule('tenant-a', message({ recipient: digits }), Date.now())).ok).toBe(true);
  });

  it('cancels past more than a page of messages and skips the other channel', async () => {
    const digits = newRecipient();
    const now = Date.now() + 3_600_000;
    const made = [];
    // the other channel's messages interleave with these in the recipient's list
    for (let i = 0; i < 1_300; i++) {
      const channel: Channel = i % 3 === 0 ? 'whatsapp' : 'sms';
      made.push(await schedule('bulk', { recipient: digits, channel, sendAt: now + (i % 7) }));
    }
    const sms = made.filter((m) => m.channel === 'sms');
    const result = await suppressions.optOut({ channel: 'sms', recipient: digits, tenant: 'bulk' }, 'api', Date.now());
    expect(result.canceled).toBe(sms.length);
    expect((await scheduler.store.list('bulk', 'scheduled', { limit: 500, recipient: digits, channel: 'sms' })).messages).toEqual([]);
    const left = await scheduler.store.scheduledCount('bulk');
    expect(left).toBe(made.length - sms.length);

    const everyone = await suppressions.optOut({ channel: 'whatsapp', recipient: digits }, 'inbound', Date.now());
    expect(everyone.canceled).toBe(made.length - sms.length);
    expect(await scheduler.store.scheduledCount('bulk')).toBe(0);
  });

  it('lists only its own entries, newest first, page by page', async () => {
    const at = Date.now();
    const entries: string[] = [];
    for (let i = 0; i < 23; i++) {
      const digits = newRecipient();
      // several in one millisecond: each takes the next one, so the creation time orders them
      await suppressions.optOut({ channel: i % 2 ? 'sms' : 'whatsapp', recipient: digits, tenant: 'lister' }, 'api', at + Math.floor(i / 3));
      entries.push(`${i % 2 ? 'sms' : 'whatsapp'}:${digits}`);
    }
    await suppressions.optOut({ channel: 'sms', recipient: newRecipient(), tenant: 'someone-else' }, 'api', at);
    await suppressions.optOut({ channel: 'sms', recipient: newRecipient() }, 'inbound', at);
    const seen: string[] = [];
    const times: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await suppressions.list('lister', { limit: 4, ...(cursor ? { cursor: decodeSuppressionCursor(cursor)! } : {}) });
      times.push(...page.suppressions.map((s) => Date.parse(s.createdAt)));
      expect(page.suppressions.length).toBeLessThanOrEqual(4);
      seen.push(...page.suppressions.map((s) => `${s.channel}:${s.recipient}`));
      for (const s of page.suppressions) expect(s).toMatchObject({ scope: 'tenant', source: 'api' });
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...entries].reverse());
    expect(new Set(times).size).toBe(23);
    expect(times[22]).toBe(at);
    expect(times[0]).toBe(at + 22);
    expect((await suppressions.list('nobody', { limit: 10 })).suppressions).toEqual([]);
    for (const bad of ['', 'abc', Buffer.from('s:').toString('base64url'), Buffer.from('s:1e9').toString('base64url'), Buffer.from('1:sms:5511999999999').toString('base64url')]) {
      expect(decodeSuppressionCursor(bad), bad).toBeNull();
    }
  });

  it('a tenant sees a deployment-wide opt-out of a number it asks about, its own entry first', async () => {
    const digits = newRecipient();
    await suppressions.optOut({ channel: 'sms', recipient: digits }, 'inbound', Date.now());
    expect(await suppressions.get('tenant-b', 'sms', digits)).toMatchObject({ scope: 'deployment', source: 'inbound' });
    await suppressions.optOut({ channel: 'sms', recipient: digits, tenant: 'tenant-b' }, 'api', Date.now());
    expect(await suppressions.get('tenant-b', 'sms', `+${digits}`)).toMatchObject({ scope: 'tenant', source: 'api' });
    expect(await suppressions.get('tenant-b', 'whatsapp', digits)).toBeNull();
  });
});

describe('at send time', () => {
  it('the claim cancels a scheduled message whose recipient is suppressed and fails one already sending', async () => {
    const digits = newRecipient();
    const scheduled = await schedule('tenant-a', { recipient: digits, sendAt: Date.now() });
    const sending = await schedule('tenant-a', { recipient: `+${digits}`, sendAt: Date.now() });
    await scheduler.claim(sending.id, Date.now());
    await scheduler.retryLater(sending.id, Date.now(), '20503: Service Unavailable', Date.now());
    // as if the opt-out had not reached these messages (scheduled before the index existed)
    for (const tag of keyspace.allTags()) await redis.hset(keyspace.suppressionReplica(tag), `sms:${digits}`, '1');
    expect(await scheduler.claim(scheduled.id, Date.now())).toEqual({ outcome: 'final', status: 'canceled' });
    expect(await get('tenant-a', scheduled.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect(await scheduler.claim(sending.id, Date.now())).toEqual({ outcome: 'final', status: 'failed' });
    expect(await get('tenant-a', sending.id)).toMatchObject({ status: 'failed', attempts: 1, lastError: expect.stringMatching(/^RECIPIENT_OPTED_OUT: /) });
    expect(await feedOf(sending.id).waitFor('messageFailed', sending.id)).toBeTruthy();
  });

  it('a STOP racing the claim: the message is either claimed before it or canceled by it, never both', async () => {
    const other = new Redis(redisUrl());
    const racer = await Scheduler.create(other, { keyspace, eventsMaxLen: 100_000 });
    try {
      const outcomes = { claimed: 0, canceled: 0 };
      for (let round = 0; round < 60; round++) {
        const digits = newRecipient();
        const m = await schedule(`racer-${round % 2}`, { recipient: round % 2 ? `+${digits}` : digits, sendAt: Date.now() });
        // the claim leaves a little later each round, so it lands before, between and after the STOP's scripts
        const [optOut, claim] = await Promise.all([
          racer.suppressions.optOut({ channel: 'sms', recipient: digits }, 'inbound', Date.now()),
          ticks(round % 6).then(() => scheduler.claim(m.id, Date.now())),
        ]);
        const record = await get(`racer-${round % 2}`, m.id);
        if (claim.outcome === 'claimed') {
          outcomes.claimed++;
          expect(optOut.canceled).toBe(0);
          expect(record).toMatchObject({ status: 'sending', attempts: 1 });
          expect(feedOf(m.id).events(m.id)).not.toContain('messageDeleted');
        } else {
          outcomes.canceled++;
          expect(claim).toEqual({ outcome: 'final', status: 'canceled' });
          expect(record).toMatchObject({ status: 'canceled', cancelReason: 'opted_out', attempts: 0 });
          // a second claim (the job again) never sends it
          expect(await scheduler.claim(m.id, Date.now())).toEqual({ outcome: 'final', status: 'canceled' });
        }
      }
      expect(outcomes.claimed + outcomes.canceled).toBe(60);
    } finally {
      await racer.close();
      other.disconnect();
    }
  });
});

describe('crashes and races between partitions', () => {
  it('a change whose process died before the partitions got it is finished by the repair', async () => {
    const digits = newRecipient();
    const made = await scheduleInEveryPartition('tenant-a', { recipient: digits });
    const now = Date.now();
    // the canonical write alone, as a process killed right after it leaves it
    await (redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>).recordSuppression!(
      keyspace.suppressionSeq(), keyspace.global(), '*', 'sms', digits, '1', now, 'inbound',
    );
    expect(await redis.zcard(keyspace.suppressionJournal())).toBe(1);
    expect((await get('tenant-a', made[0]!.id)).status).toBe('scheduled');

    expect(await suppressions.repair(now + SUPPRESSION_REPAIR_GRACE_MS - 1)).toBe(0);
    expect(await suppressions.repair(now + SUPPRESSION_REPAIR_GRACE_MS)).toBe(1);
    for (const m of made) expect(await get('tenant-a', m.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect(await scheduler.schedule('tenant-b', message({ recipient: digits }), Date.now())).toMatchObject({ ok: false, reason: 'opted_out' });
    expect(await redis.zcard(keyspace.suppressionJournal())).toBe(0);
    expect(await suppressions.repair(now + 10 * SUPPRESSION_REPAIR_GRACE_MS)).toBe(0);
  });

  it('an older change arriving after a newer one never undoes it', async () => {
    const digits = newRecipient();
    const call = (redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>);
    const now = Date.now();
    // an opt-out (seq n) that stalls before the partitions, then an opt-in (seq n+1) that completes
    const [, , , seq, op] = (await call.recordSuppression!(keyspace.suppressionSeq(), keyspace.global(), '*', 'sms', digits, '1', now, 'inbound')) as [number, string, string, number, string];
    expect(await suppressions.optIn({ channel: 'sms', recipient: digits }, now)).toBe(true);
    // the stalled opt-out now reaches a partition: the replica keeps the opt-in
    const tag = keyspace.tag(0);
    await call.applySuppression!(keyspace.suppressionReplica(tag), tag, now, '1000', '1000', '', 'sms', digits, seq, '1', 10, '', '');
    expect(Number(await redis.hget(keyspace.suppressionReplica(tag), `sms:${digits}`))).toBeLessThan(0);
    expect((await scheduler.schedule('tenant-a', message({ recipient: digits }), Date.now())).ok).toBe(true);
    // its journal entry, once stale, is finished with the canonical state: not suppressed
    expect(await redis.zscore(keyspace.suppressionJournal(), op)).not.toBeNull();
    expect(await suppressions.repair(now + SUPPRESSION_REPAIR_GRACE_MS)).toBe(1);
    for (const t of keyspace.allTags()) expect(Number(await redis.hget(keyspace.suppressionReplica(t), `sms:${digits}`))).toBeLessThan(0);
    expect(await redis.zcard(keyspace.suppressionJournal())).toBe(0);
  });

  it('STOP and START racing end as the canonical list says, in every partition', async () => {
    const other = new Redis(redisUrl());
    const racer = await Scheduler.create(other, { keyspace, eventsMaxLen: 100_000 });
    try {
      for (let round = 0; round < 20; round++) {
        const digits = newRecipient();
        await Promise.all([
          suppressions.optOut({ channel: 'sms', recipient: digits }, 'inbound', Date.now()),
          racer.suppressions.optIn({ channel: 'sms', recipient: digits }, Date.now()),
        ]);
        const canonical = await redis.hexists(keyspace.deploymentSuppressions(), `sms:${digits}`);
        for (const tag of keyspace.allTags()) {
          const replica = Number((await redis.hget(keyspace.suppressionReplica(tag), `sms:${digits}`)) ?? 0);
          expect(replica > 0 ? 1 : 0, `round ${round} ${tag}`).toBe(canonical);
        }
      }
    } finally {
      await racer.close();
      other.disconnect();
    }
  });
});
