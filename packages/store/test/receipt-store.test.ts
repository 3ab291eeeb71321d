import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { MessageEventName, ReceiptStatus } from '@punctual/shared';
import { Keyspace, Maintenance, PARKED_RECEIPT_TTL_MS, Scheduler, receiptKeys, type NewMessage, type ProviderReceipt } from '../src/index.js';
import { deletePrefix, keysOfPrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('store-receipts');
const keyspace = new Keyspace({ prefix, partitions: 3 });
const RETENTION_MS = 60_000;
let redis: Redis;
let scheduler: Scheduler;
let sid = 0;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: 10_000, retentionMs: RETENTION_MS });
});
afterAll(async () => {
  await scheduler.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const newSid = () => `SM${(++sid).toString(16).padStart(32, '0')}`;

async function sending(over: Partial<NewMessage> = {}, tenant = 'acme') {
  const now = Date.now();
  const result = await scheduler.schedule(tenant, { recipient: '+5511999999999', channel: 'sms', sendAt: now, message: 'hi', ...over }, now);
  if (!result.ok) throw new Error(result.reason);
  expect((await scheduler.claim(result.record.id, now)).outcome).toBe('claimed');
  return result.record;
}

/** A delivered message with a fresh provider id; `lookupAt`: when its receipt is due for a lookup. */
async function delivered(over: Partial<NewMessage> = {}, lookupAt?: number) {
  const { id } = await sending(over);
  const providerMessageId = newSid();
  const record = await scheduler.deliver(id, Date.now(), providerMessageId, 5, lookupAt);
  expect(record).toMatchObject({ status: 'delivered', providerMessageId });
  return record!;
}

const receipt = (providerMessageId: string, status: ReceiptStatus, extra: Partial<ProviderReceipt> = {}): ProviderReceipt => ({
  providerMessageId,
  status,
  at: Date.now(),
  ...extra,
});

/** Every key and value of the prefix: equal before and after = nothing changed. */
async function fingerprint(): Promise<Map<string, string>> {
  const keys = (await keysOfPrefix(redis, prefix)).sort();
  const values = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
  return new Map(keys.map((k, i) => [k, values[i]?.toString('hex') ?? '']));
}

async function feedEvents(id: string): Promise<MessageEventName[]> {
  const entries = await redis.xrange(keyspace.events(keyspace.tagOf(id)), '-', '+');
  // entries are [event, <name>, tenant, <tenant>, data, <record JSON>]
  return entries.filter(([, f]) => JSON.parse(f[5]!).id === id).map(([, f]) => f[1] as MessageEventName);
}

describe('receipts', () => {
  it('finds the message by its provider id in whichever partition it is, and stores the receipt', async () => {
    const byPartition = new Map<number, string>();
    while (byPartition.size < 3) {
      const record = await delivered();
      byPartition.set(keyspace.partitionOf(record.id), record.id);
    }
    for (const id of byPartition.values()) {
      const before = (await scheduler.store.get('acme', id))!;
      const at = Date.now() + 1500;
      const result = await scheduler.recordReceipt(receipt(before.providerMessageId!, 'sent', { at }), Date.now());
      expect(result).toMatchObject({ outcome: 'applied', tenant: 'acme', record: { id, receipt: { status: 'sent', at: new Date(at).toISOString() } } });
      const after = await scheduler.store.get('acme', id);
      expect(after).toEqual({ ...before, receipt: { status: 'sent', at: new Date(at).toISOString() }, version: before.version + 1, updatedAt: after!.updatedAt });
      expect(await feedEvents(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered', 'messageReceipt']);
    }
  });

  it('never moves a receipt backwards, never replaces a final one, and changes nothing for a duplicate', async () => {
    const read = await delivered();
    const pid = read.providerMessageId!;
    expect((await scheduler.recordReceipt(receipt(pid, 'read'), Date.now())).outcome).toBe('applied');
    let before = await fingerprint();
    expect(await scheduler.recordReceipt(receipt(pid, 'delivered'), Date.now())).toEqual({ outcome: 'ignored' });
    expect(await scheduler.recordReceipt(receipt(pid, 'sent'), Date.now())).toEqual({ outcome: 'ignored' });
    expect(await scheduler.recordReceipt(receipt(pid, 'failed', { errorCode: '131047' }), Date.now())).toEqual({ outcome: 'ignored' });
    expect(await scheduler.recordReceipt(receipt(pid, 'read', { at: Date.now() + 5000 }), Date.now())).toEqual({ outcome: 'duplicate' });
    expect(await fingerprint()).toEqual(before);

    const failed = await delivered();
    const steps: [ReceiptStatus, string][] = [['sent', 'applied'], ['delivered', 'applied'], ['undelivered', 'applied'], ['delivered', 'ignored'], ['read', 'ignored'], ['failed', 'ignored']];
    for (const [status, outcome] of steps) {
      const code = status === 'undelivered' ? '30003' : status === 'failed' ? '30005' : undefined;
      expect((await scheduler.recordReceipt(receipt(failed.providerMessageId!, status, { errorCode: code }), Date.now())).outcome).toBe(outcome);
    }
    expect((await scheduler.store.get('acme', failed.id))!.receipt).toMatchObject({ status: 'undelivered', errorCode: '30003' });
    expect((await feedEvents(failed.id)).filter((e) => e === 'messageReceipt')).toHaveLength(3);

    before = await fingerprint();
    expect(await scheduler.recordReceipt(receipt(newSid(), 'delivered'), Date.now())).toEqual({ outcome: 'unknown' });
    expect(await scheduler.recordReceipt(receipt('not a sid!', 'delivered'), Date.now())).toEqual({ outcome: 'unknown' });
    expect(await fingerprint()).toEqual(before);
  });

  it('goes straight to the partition of the message id the provider carried back, checking its provider id', async () => {
    const record = await delivered({ channel: 'whatsapp' });
    const pid = record.providerMessageId!;
    expect(await scheduler.recordReceipt(receipt(pid, 'delivered', { messageId: record.id }), Date.now())).toMatchObject({ outcome: 'applied' });
    const other = await delivered({ channel: 'whatsapp' });
    // a message id that does not go with the provider id is not trusted: the index decides
    expect(await scheduler.recordReceipt(receipt(pid, 'read', { messageId: other.id }), Date.now())).toMatchObject({ outcome: 'applied', record: { id: record.id } });
    expect((await scheduler.store.get('acme', other.id))!.receipt).toBeUndefined();
  });

  it('keeps a receipt that arrives before the deliver transition and applies it there', async () => {
    const { id } = await sending({ callbackUrl: 'https://example.com/cb' });
    const pid = newSid();
    const at = Date.now();
    expect(await scheduler.recordReceipt(receipt(pid, 'sent', { at }), Date.now())).toEqual({ outcome: 'parked' });
    expect(await scheduler.recordReceipt(receipt(pid, 'delivered', { at: at + 10 }), Date.now())).toEqual({ outcome: 'parked' });
    expect(await scheduler.recordReceipt(receipt(pid, 'sent', { at }), Date.now())).toEqual({ outcome: 'ignored' });
    expect(await scheduler.recordReceipt(receipt(pid, 'delivered'), Date.now())).toEqual({ outcome: 'duplicate' });

    const record = await scheduler.deliver(id, Date.now(), pid, 5, Date.now() + 600_000);
    expect(record).toMatchObject({ status: 'delivered', version: 3 });
    const now = (await scheduler.store.get('acme', id))!;
    expect(now).toMatchObject({ version: 4, receipt: { status: 'delivered', at: new Date(at + 10).toISOString() } });
    expect(await feedEvents(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered', 'messageReceipt']);
    const jobs = await Promise.all([`${id}-v3`, `${id}-v4`].map((jobId) => scheduler.callbacks.of(id).getJob(jobId)));
    expect(jobs.map((job) => [job?.data.event, job?.data.record.version])).toEqual([['messageDelivered', 3], ['messageReceipt', 4]]);
    // a settled receipt needs no lookup, and the parked one is gone
    const tag = keyspace.tagOf(id);
    expect(await redis.zscore(receiptKeys(tag).lookups, id)).toBeNull();
    expect(await redis.hlen(`${tag}:receipt-parked`)).toBe(0);
    expect(await redis.zcard(receiptKeys(tag).outbox)).toBe(0);
  });

  it('parks nothing when no message is being sent, and drops parked receipts after their time', async () => {
    expect(await scheduler.recordReceipt(receipt(newSid(), 'sent'), Date.now())).toEqual({ outcome: 'unknown' });
    const { id } = await sending();
    const tag = keyspace.tagOf(id);
    const stale = newSid();
    expect(await scheduler.recordReceipt(receipt(stale, 'sent'), Date.now())).toEqual({ outcome: 'parked' });
    expect(await redis.hexists(`${tag}:receipt-parked`, stale)).toBe(1);
    // the next receipt parked after the first one's time is up removes it
    expect(await scheduler.recordReceipt(receipt(newSid(), 'sent'), Date.now() + PARKED_RECEIPT_TTL_MS + 1)).toEqual({ outcome: 'parked' });
    expect(await redis.hexists(`${tag}:receipt-parked`, stale)).toBe(0);
    await scheduler.deliver(id, Date.now(), newSid(), 1);
  });

  it('lists messages by receipt, alone or with a channel or recipient, newest delivery first', async () => {
    const tenant = 'lists';
    const make = async (over: Partial<NewMessage>, status?: ReceiptStatus) => {
      const { id } = await sending(over, tenant);
      const pid = newSid();
      await scheduler.deliver(id, Date.now(), pid, 1);
      if (status) await scheduler.recordReceipt(receipt(pid, status), Date.now());
      return id;
    };
    const smsRead = await make({ channel: 'sms' }, 'read');
    const waRead = await make({ channel: 'whatsapp', recipient: '5511888888888' }, 'read');
    const waDelivered = await make({ channel: 'whatsapp' }, 'delivered');
    await make({ channel: 'sms' });
    const list = async (filter: object) => (await scheduler.store.list(tenant, 'delivered', { limit: 10, ...filter })).messages.map((m) => m.id);
    expect(await list({ receipt: 'read' })).toEqual([waRead, smsRead]);
    expect(await list({ receipt: 'read', channel: 'sms' })).toEqual([smsRead]);
    expect(await list({ receipt: 'read', recipient: '+5511888888888' })).toEqual([waRead]);
    expect(await list({ receipt: 'delivered', recipient: '5511999999999', channel: 'whatsapp' })).toEqual([waDelivered]);
    expect(await list({ receipt: 'failed' })).toEqual([]);
    expect(await scheduler.store.list(tenant, 'scheduled', { limit: 10, receipt: 'read' })).toEqual({ messages: [], nextCursor: null });

    // a receipt that moves on leaves the list of the one before
    await scheduler.recordReceipt(receipt((await scheduler.store.get(tenant, waDelivered))!.providerMessageId!, 'read'), Date.now());
    expect(await list({ receipt: 'delivered' })).toEqual([]);
    expect(await list({ receipt: 'read' })).toEqual([waDelivered, waRead, smsRead]);
  });

  it('takes due lookups once, leased, and forgets them once a settled receipt arrives or the record expires', async () => {
    const now = Date.now();
    const due = await delivered({}, now - 1);
    const later = await delivered({}, now + 60_000);
    const settled = await delivered({}, now - 1);
    await scheduler.recordReceipt(receipt(settled.providerMessageId!, 'delivered'), now);
    const sent = await delivered({}, now - 1);
    await scheduler.recordReceipt(receipt(sent.providerMessageId!, 'sent'), now);

    const taken = (await Promise.all(keyspace.allTags().map((tag) => scheduler.receipts.takeDueLookups(tag, now, 100, now + 30_000)))).flat();
    expect(taken.sort()).toEqual([due.id, sent.id].sort());
    // leased: not due again for another taker until the lease ends
    expect((await Promise.all(keyspace.allTags().map((tag) => scheduler.receipts.takeDueLookups(tag, now, 100, now + 30_000)))).flat()).toEqual([]);
    const tagOfLater = keyspace.tagOf(later.id);
    expect(await redis.zscore(receiptKeys(tagOfLater).lookups, later.id)).toBe(String(now + 60_000));

    // the retention sweep removes the provider id and the lookup with the record
    const maintenance = new Maintenance(redis, keyspace, 10_000, RETENTION_MS);
    for (const tag of keyspace.allTags()) await maintenance.expire(tag, Date.now() + RETENTION_MS + 1000, 1000);
    for (const record of [due, later, settled, sent]) {
      const tag = keyspace.tagOf(record.id);
      expect(await redis.hget(receiptKeys(tag).providerIds, record.providerMessageId!)).toBeNull();
      expect(await redis.zscore(receiptKeys(tag).lookups, record.id)).toBeNull();
    }
    const leftovers = (await Promise.all(keyspace.allTags().map((tag) => redis.keys(`${tag}:t:acme:delivered:rc:*`)))).flat();
    expect(leftovers).toEqual([]);
  });

  it('queues a receipt callback a process died before queueing, and the delivered one as it was delivered', async () => {
    const record = await delivered({ callbackUrl: 'https://example.com/cb' });
    // stored by the script, the process gone before the callback was queued
    const stored = await scheduler.receipts.record(receipt(record.providerMessageId!, 'read'), Date.now());
    expect(stored).toMatchObject({ outcome: 'applied', record: { version: record.version + 1 } });
    expect(await scheduler.requeueReceiptCallbacks(Date.now() - 60_000, 100)).toBe(0);
    expect(await scheduler.requeueReceiptCallbacks(Date.now() + 1, 100)).toBe(1);
    const job = await scheduler.callbacks.of(record.id).getJob(`${record.id}-v${record.version + 1}`);
    expect(job?.data).toMatchObject({ event: 'messageReceipt', tenant: 'acme', record: { version: record.version + 1, receipt: { status: 'read' } } });
    expect(await scheduler.requeueReceiptCallbacks(Date.now() + 1, 100)).toBe(0);

    // a delivery job run again queues the delivered callback under its first version, without the receipt
    await scheduler.callbacks.of(record.id).remove(`${record.id}-v${record.version}`);
    await scheduler.notifyFinal(record.id);
    const deliveredJob = await scheduler.callbacks.of(record.id).getJob(`${record.id}-v${record.version}`);
    expect(deliveredJob?.data).toEqual({ event: 'messageDelivered', tenant: 'acme', record });
  });

  it('counts receipts and the time from acceptance to receipt, fleet-wide', async () => {
    const counts = await scheduler.receipts.counts();
    expect(counts.get('read:sms')).toBeGreaterThan(0);
    const latency = await scheduler.receipts.latency();
    const read = latency.get('read')!;
    expect(read.count).toBe(counts.get('read:sms')! + (counts.get('read:whatsapp') ?? 0));
    expect([...read.buckets.values()].reduce((a, b) => a + b, 0)).toBe(read.count);
  });
});
