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
  async outcomeCounts(): Promise<OutcomeCounts> {
    const totals: OutcomeCounts = new Map();
    for (const hash of await this.perPartition((tag) => this.keys.stats(tag))) {
      for (const [field, value] of Object.entries(hash)) totals.set(field, (totals.get(field) ?? 0) + Number(value));
    }
    return totals;
  }

  /** How late deliveries reached their provider. */
  async latenessHistogram(): Promise<MsHistogram> {
    const histogram: MsHistogram = { buckets: new Map(), count: 0, sumMs: 0 };
    for (const le of [...LATENESS_BUCKETS_MS, Infinity]) histogram.buckets.set(le, 0);
    for (const hash of await this.perPartition((tag) => this.keys.lateness(tag))) {
      for (const [field, value] of Object.entries(hash)) {
        if (field === 'sum') histogram.sumMs += Number(value);
        else if (field.startsWith('le:')) {
          const le = field === 'le:inf' ? Infinity : Number(field.slice(3));
          histogram.buckets.set(le, (histogram.buckets.get(le) ?? 0) + Number(value));
          histogram.count += Number(value);
        }
      }
    }
    return histogram;
  }

  private perPartition(key: (tag: string) => string): Promise<Record<string, string>[]> {
    return Promise.all(this.keys.allTags().map((tag) => this.redis.hgetall(key(tag))));
  }
}
