import type { Keyspace } from './keys.js';
import { defineScripts, type RedisClient } from './redis.js';
import { expireMessages } from './lua/expire-messages.js';

type Commands = { expireMessages(key: string, ...args: (string | number)[]): Promise<[number, number]> };

/** What the worker's periodic tasks ask of the records: the retention sweep and the reconciler's queries. */
export class Maintenance {
  private readonly redis: RedisClient & Commands;

  constructor(
    redis: RedisClient,
    private readonly keys: Keyspace,
    private readonly eventsMaxLen: number,
    private readonly retentionMs: number,
  ) {
    defineScripts(redis, { expireMessages });
    this.redis = redis as RedisClient & Commands;
  }

  /**
   * Deletes up to `limit` final records of a partition whose retention ended at or before `now`,
   * with their index entries. Returns how many were deleted and how many expiry entries were due.
   */
  async expire(tag: string, now: number, limit: number): Promise<{ expired: number; examined: number }> {
    const [expired, examined] = await this.redis.expireMessages(this.keys.expiring(tag), tag, now, this.eventsMaxLen, this.retentionMs, limit);
    return { expired, examined };
  }

  /**
   * Trims a partition's feed stream to the events of the last retention period (the stream is
   * otherwise only capped by length): each event carries a record. Stream ids start with their
   * entry's time in ms, so everything below `now - retention` is older. Returns how many went.
   */
  trimFeed(tag: string, now: number): Promise<number> {
    return this.redis.xtrim(this.keys.events(tag), 'MINID', Math.max(0, now - this.retentionMs));
  }

  /** Scheduled messages (every tenant) whose `sendAt` is at or before `until`, oldest first. */
  dueIds(tag: string, until: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.due(tag), '-inf', until, 'LIMIT', 0, count);
  }

  /**
   * Messages claimed at or before `until` and still sending, with the worker process that claimed
   * each (null when unnamed): what a crashed worker leaves behind.
   */
  async staleClaims(tag: string, until: number, count: number): Promise<{ id: string; worker: string | null }[]> {
    const ids = await this.sendingIds(tag, until, count);
    if (ids.length === 0) return [];
    // one record at a time: on a Redis Cluster a multi-key read must stay in one slot
    const records = await Promise.all(ids.map((id) => this.redis.get(this.keys.record(id))));
    return ids.map((id, i) => ({ id, worker: records[i] ? ((JSON.parse(records[i]!) as { claimedBy?: string }).claimedBy ?? null) : null }));
  }

  /** Messages claimed for sending at or before `until`. */
  sendingIds(tag: string, until: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.sending(tag), '-inf', until, 'LIMIT', 0, count);
  }
}
