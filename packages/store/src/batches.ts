import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { MESSAGE_STATUSES, type BatchCounts, type BatchSummary } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import type { StoredFields } from './record.js';
import { defineScripts, type RedisClient } from './redis.js';
import { cancelBatch, scheduleBatch } from './lua/batches.js';
import { transitionArgs } from './lua/prelude.js';

/**
 * Why a batch item was not scheduled: `quota`, `exists` and `opted_out:<deployment|tenant>` as a
 * single message; `unavailable`: its partition's write failed.
 */
export type BatchRefusal = 'quota' | 'exists' | 'opted_out:deployment' | 'opted_out:tenant' | 'unavailable';

type Commands = {
  cancelBatch(key: string, ...args: (string | number)[]): Promise<[number, ...string[]]>;
};

/** Scheduled messages a cancel script takes per call, so one call never holds Redis long. */
const CANCEL_CHUNK = 250;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The id of a batch's item: the batch id's time, then 80 bits of a hash of the batch id and the
 * item's index. The same batch id always gives its items the same ids, so a batch written again
 * under the same id (an idempotent retry) finds the items it already created instead of doubling them.
 */
export function batchMessageId(batchId: string, index: number): string {
  const digest = createHash('sha256').update(`${batchId}:${index}`).digest();
  let random = '';
  for (let i = 0; i < 16; i++) {
    // 16 groups of 5 bits from the first 10 bytes
    const bit = i * 5;
    const byte = bit >> 3;
    const word = (digest[byte]! << 8) | digest[byte + 1]!;
    random += CROCKFORD[(word >> (11 - (bit & 7))) & 31];
  }
  return batchId.slice(0, 10) + random;
}

export interface BatchStoreOptions {
  keyspace: Keyspace;
  eventsMaxLen: number;
  retentionMs: number;
}

/**
 * The records' side of batches. A batch has no record of its own: each partition holding some of
 * its messages keeps a hash of their counts by status (plus `createdAt` and `total`), which the
 * transition scripts keep in step (lua/prelude.ts `tally`), and a list of the ones still scheduled.
 * Both are keyed by tenant, so another tenant's batch id names nothing.
 */
export class BatchStore {
  private readonly redis: RedisClient & Commands;
  private readonly keys: Keyspace;
  private readonly common: (string | number)[];

  constructor(redis: RedisClient, { keyspace, eventsMaxLen, retentionMs }: BatchStoreOptions) {
    defineScripts(redis, { scheduleBatch, cancelBatch });
    this.redis = redis as RedisClient & Commands;
    this.keys = keyspace;
    this.common = transitionArgs(eventsMaxLen, retentionMs);
  }

  /**
   * Appends the scheduling of the batch's items of one partition (their stored fields, in item
   * order) to a MULTI of that partition. Read the outcomes with `scheduleOutcomes`.
   */
  scheduleIn(tx: ChainableCommander, tag: string, tenant: string, batchId: string, items: StoredFields[], cap: number, now: number): void {
    const key = this.keys.batch(tag, tenant, batchId);
    const records = items.map((fields) => JSON.stringify(fields));
    (tx as unknown as Record<string, (...args: (string | number)[]) => void>).scheduleBatch!(key, tag, now, ...this.common, cap, ...records);
  }

  static scheduleOutcomes(reply: unknown): ('ok' | BatchRefusal)[] {
    return reply as ('ok' | BatchRefusal)[];
  }

  /** The batch's counts summed over the partitions; null when the tenant has no such batch. */
  async summary(tenant: string, batchId: string): Promise<BatchSummary | null> {
    const parts = await Promise.all(this.keys.allTags().map((tag) => this.redis.hgetall(this.keys.batch(tag, tenant, batchId))));
    const counts = Object.fromEntries(MESSAGE_STATUSES.map((status) => [status, 0])) as BatchCounts;
    let createdAt = Infinity;
    let total = 0;
    for (const part of parts) {
      if (part.createdAt !== undefined) createdAt = Math.min(createdAt, Number(part.createdAt));
      total += Number(part.total ?? 0);
      for (const status of MESSAGE_STATUSES) counts[status] += Number(part[status] ?? 0);
    }
    if (createdAt === Infinity) return null;
    for (const status of MESSAGE_STATUSES) counts[status] = Math.max(0, counts[status]);
    return { id: batchId, createdAt: new Date(createdAt).toISOString(), total, counts };
  }

  /** Cancels every scheduled message of the batch in one partition; returns their ids. */
  async cancel(tag: string, tenant: string, batchId: string, now: number): Promise<string[]> {
    const canceled: string[] = [];
    for (;;) {
      const [examined, ...ids] = await this.redis.cancelBatch(this.keys.batchScheduled(tag, tenant, batchId), tag, now, ...this.common, CANCEL_CHUNK);
      canceled.push(...ids);
      if (examined < CANCEL_CHUNK) return canceled;
    }
  }
}
