import type { Keyspace } from './keys.js';
import { LATENESS_BUCKETS_MS } from './message-store.js';
import type { RedisClient } from './redis.js';

/** Fleet-wide transition counts: `<outcome>:<channel>` → count, summed over partitions. */
export type OutcomeCounts = Map<string, number>;

/** A histogram of durations kept in Redis, summed over partitions; `buckets` are per bucket, not cumulative. */
export interface MsHistogram {
  /** Count in each bucket, keyed by upper bound in ms (Infinity = beyond the last). */
  buckets: Map<number, number>;
  count: number;
  sumMs: number;
}

/** A hash every partition keeps (counters, histogram buckets), each field summed over the partitions. */
export async function sumPartitionHashes(redis: RedisClient, keys: Keyspace, key: (tag: string) => string): Promise<Map<string, number>> {
  const hashes = await Promise.all(keys.allTags().map((tag) => redis.hgetall(key(tag))));
  const totals = new Map<string, number>();
  for (const hash of hashes) {
    for (const [field, value] of Object.entries(hash)) totals.set(field, (totals.get(field) ?? 0) + Number(value));
  }
  return totals;
}

/**
 * The figures every transition script keeps per partition (outcome counters, lateness
 * histogram), read and summed for /metrics: the same totals on any API instance.
 */
export class FleetStats {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
  ) {}

  /** Scheduled, delivered, failed, canceled, retried and throttled counts by channel. */
  outcomeCounts(): Promise<OutcomeCounts> {
    return sumPartitionHashes(this.redis, this.keys, (tag) => this.keys.stats(tag));
  }

  /** How late deliveries reached their provider. */
  async latenessHistogram(): Promise<MsHistogram> {
    const histogram: MsHistogram = { buckets: new Map(), count: 0, sumMs: 0 };
    for (const le of [...LATENESS_BUCKETS_MS, Infinity]) histogram.buckets.set(le, 0);
    for (const [field, value] of await sumPartitionHashes(this.redis, this.keys, (tag) => this.keys.lateness(tag))) {
      if (field === 'sum') histogram.sumMs += value;
      else if (field.startsWith('le:')) {
        const le = field === 'le:inf' ? Infinity : Number(field.slice(3));
        histogram.buckets.set(le, (histogram.buckets.get(le) ?? 0) + value);
        histogram.count += value;
      }
    }
    return histogram;
  }
}
