import { MESSAGE_ID_PATTERN, RECEIPT_STATUSES, type MessageRecord, type ReceiptStatus } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import { sumPartitionHashes, type MsHistogram } from './fleet-stats.js';
import { defineScripts, type RedisClient } from './redis.js';
import { parseStored, toRecord, type StoredFields } from './record.js';
import { RECEIPT_LATENCY_BUCKETS_MS, recordReceipt, takeDueLookups } from './lua/receipts.js';
import { transitionArgs } from './lua/prelude.js';

/** What a provider reported about a message it accepted. */
export interface ProviderReceipt {
  providerMessageId: string;
  /** The message id the provider carried back (Meta's biz_opaque_callback_data), when it did. */
  messageId?: string;
  status: ReceiptStatus;
  /** Epoch ms: the provider's own time of the report, or when it arrived. */
  at: number;
  errorCode?: string;
}

/**
 * `applied`: the receipt changed the record. `duplicate`: it is the receipt the record has.
 * `ignored`: it would move the receipt backwards or past a final one. `parked`: its message is
 * being sent and the provider id is not recorded yet; the deliver transition applies it.
 * `unknown`: no message of ours has that provider id.
 */
export type ReceiptOutcome =
  | { outcome: 'applied'; tenant: string; record: MessageRecord }
  | { outcome: 'duplicate' | 'ignored' | 'parked' | 'unknown' };

/** Per-status histogram of the time from acceptance to receipt; `buckets` per bucket, not cumulative. */
/** A partition's receipt keys (lua/receipts.ts builds the same names from its base). */
export function receiptKeys(tag: string) {
  return {
    providerIds: `${tag}:pid`,
    counts: `${tag}:receipts`,
    latency: `${tag}:receipt-latency`,
    lookups: `${tag}:receipt-lookups`,
    outbox: `${tag}:receipt-outbox`,
  };
}

/**
 * A delivered record as it was right after delivery, before any receipt: the version and time the
 * deliver transition left (its callback's job id names that version).
 */
export function deliveredRecord(fields: StoredFields): MessageRecord {
  if (fields.deliveredVersion === undefined) return toRecord(fields);
  const { receiptStatus: _status, receiptAt: _at, receiptErrorCode: _code, deliveredVersion, ...delivered } = fields;
  return toRecord({ ...delivered, version: deliveredVersion, updatedAt: fields.deliveredAt! });
}

const MESSAGE_ID = new RegExp(MESSAGE_ID_PATTERN);
/** Twilio SIDs, Meta wamids (base64 with dots and padding): anything else names no message of ours. */
const PROVIDER_ID = /^[A-Za-z0-9._=+/:-]{1,256}$/;
const ERROR_CODE = /^[0-9]{1,12}$/;

type Commands = {
  recordReceipt(key: string, ...args: (string | number)[]): Promise<[string, string?]>;
  takeDueLookups(key: string, ...args: (string | number)[]): Promise<string[]>;
};

/**
 * Delivery receipts: one script per receipt (lua/receipts.ts), the set of messages whose receipt
 * is looked up at the provider, the outbox of receipt callbacks, and the fleet-wide counters.
 * A provider names its own message id, which tells no partition: the receipt goes to the partition
 * the provider named (Meta carries our message id back), else to every partition's index.
 */
export class ReceiptStore {
  private readonly redis: RedisClient & Commands;
  private readonly common: (string | number)[];

  constructor(
    redis: RedisClient,
    private readonly keys: Keyspace,
    { eventsMaxLen, retentionMs }: { eventsMaxLen: number; retentionMs: number },
  ) {
    defineScripts(redis, { recordReceipt, takeDueLookups });
    this.redis = redis as RedisClient & Commands;
    this.common = transitionArgs(eventsMaxLen, retentionMs);
  }

  /**
   * Applies a receipt to the message with that provider id. With several partitions, each one's
   * index is asked first; only when none knows the id is it parked where a message is being sent
   * (atomically per partition, so a deliver transition running meanwhile either sees it parked or
   * has indexed the id first).
   */
  async record(receipt: ProviderReceipt, now: number): Promise<ReceiptOutcome> {
    if (!PROVIDER_ID.test(receipt.providerMessageId) || !RECEIPT_STATUSES.includes(receipt.status)) return { outcome: 'unknown' };
    const hinted = receipt.messageId !== undefined && MESSAGE_ID.test(receipt.messageId) ? receipt.messageId : '';
    if (hinted) {
      const found = await this.apply(this.keys.tagOf(hinted), receipt, hinted, true, now);
      if (found.outcome !== 'unknown') return found;
    }
    const tags = this.keys.allTags();
    if (tags.length > 1) {
      const found = (await Promise.all(tags.map((tag) => this.apply(tag, receipt, '', false, now)))).find((o) => o.outcome !== 'unknown');
      if (found) return found;
    }
    const parked = await Promise.all(tags.map((tag) => this.apply(tag, receipt, '', true, now)));
    return parked.find((o) => o.outcome === 'applied') ?? parked.find((o) => o.outcome !== 'unknown') ?? { outcome: 'unknown' };
  }

  /**
   * Up to `limit` messages of a partition whose receipt lookup is due at `now`, leased to the
   * caller until `leaseUntil` (due again then, should it never finish them).
   */
  takeDueLookups(tag: string, now: number, limit: number, leaseUntil: number): Promise<string[]> {
    return this.redis.takeDueLookups(receiptKeys(tag).lookups, now, limit, leaseUntil);
  }

  /** The lookup of a message is over (done, or pointless): never again. */
  async lookupDone(tag: string, id: string): Promise<void> {
    await this.redis.zrem(receiptKeys(tag).lookups, id);
  }

  /** Leased lookups given back untried: due again at `at`. */
  async lookupLater(tag: string, ids: string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.zadd(receiptKeys(tag).lookups, 'XX', ...ids.flatMap((id) => [at, id]));
  }

  /** The receipt callback of this version of the record is queued: its outbox entry goes. */
  async callbackQueued(record: MessageRecord): Promise<void> {
    await this.redis.zrem(receiptKeys(this.keys.tagOf(record.id)).outbox, `${record.id}:${record.version}`);
  }

  /** Receipt callbacks of a partition stored before `before` and still not queued (a process died in between). */
  async unqueuedCallbacks(tag: string, before: number, limit: number): Promise<{ entry: string; id: string }[]> {
    const entries = await this.redis.zrangebyscore(receiptKeys(tag).outbox, '-inf', before, 'LIMIT', 0, limit);
    return entries.map((entry) => ({ entry, id: entry.slice(0, entry.lastIndexOf(':')) }));
  }

  async forgetCallback(tag: string, entry: string): Promise<void> {
    await this.redis.zrem(receiptKeys(tag).outbox, entry);
  }

  /** Receipts recorded fleet-wide: `<status>:<channel>` → count. */
  counts(): Promise<Map<string, number>> {
    return sumPartitionHashes(this.redis, this.keys, (tag) => receiptKeys(tag).counts);
  }

  /** The acceptance → receipt histogram of each receipt status, fleet-wide. */
  async latency(): Promise<Map<ReceiptStatus, MsHistogram>> {
    const histograms = new Map<ReceiptStatus, MsHistogram>();
    for (const status of RECEIPT_STATUSES) {
      const buckets = new Map<number, number>([...RECEIPT_LATENCY_BUCKETS_MS, Infinity].map((le) => [le, 0]));
      histograms.set(status, { buckets, count: 0, sumMs: 0 });
    }
    for (const [field, value] of await sumPartitionHashes(this.redis, this.keys, (tag) => receiptKeys(tag).latency)) {
      const [status, kind, le] = field.split(':') as [ReceiptStatus, string, string?];
      const histogram = histograms.get(status);
      if (!histogram) continue;
      if (kind === 'count') histogram.count += value;
      else if (kind === 'sum') histogram.sumMs += value;
      else {
        const bound = le === 'inf' ? Infinity : Number(le);
        histogram.buckets.set(bound, (histogram.buckets.get(bound) ?? 0) + value);
      }
    }
    return histograms;
  }

  private async apply(tag: string, receipt: ProviderReceipt, hinted: string, park: boolean, now: number): Promise<ReceiptOutcome> {
    const code = receipt.errorCode !== undefined && ERROR_CODE.test(receipt.errorCode) ? receipt.errorCode : '';
    const [outcome, json] = await this.redis.recordReceipt(
      receiptKeys(tag).providerIds,
      tag,
      now,
      ...this.common,
      receipt.providerMessageId,
      hinted,
      receipt.status,
      Number.isFinite(receipt.at) ? Math.round(receipt.at) : now,
      code,
      park ? '1' : '0',
    );
    if (outcome !== 'applied') return { outcome: outcome as 'duplicate' | 'ignored' | 'parked' | 'unknown' };
    const fields = parseStored(json!);
    return { outcome: 'applied', tenant: fields.tenant!, record: toRecord(fields) };
  }
}
