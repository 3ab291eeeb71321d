import type { Keyspace } from './keys.js';
import { dataNodes, type RedisClient } from './redis.js';

/** How long a silent worker stays in the set before its entry is dropped. */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Worker processes announce themselves every few seconds in one sorted set (member = worker id,
 * score = last heartbeat), so any API instance can tell how many workers were seen lately.
 */
export class WorkerHeartbeats {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
  ) {}

  async beat(workerId: string, now = Date.now()): Promise<void> {
    await this.redis
      .multi()
      .zadd(this.keys.workers(), now, workerId)
      .zremrangebyscore(this.keys.workers(), '-inf', now - FORGET_AFTER_MS)
      .exec();
  }

  /** A worker that stops cleanly is no longer counted. */
  async remove(workerId: string): Promise<void> {
    await this.redis.zrem(this.keys.workers(), workerId);
  }

  /**
   * Worker processes whose Redis connection is open now (CLIENT LIST on every server holding data):
   * a process killed, however abruptly, drops its connection at once, while a slow or paused one
   * keeps it. Null when the server refuses CLIENT LIST (some managed services).
   */
  async connected(): Promise<Set<string> | null> {
    const prefix = this.keys.workerConnection('');
    const live = new Set<string>();
    try {
      for (const node of dataNodes(this.redis)) {
        const list = String(await node.call('CLIENT', 'LIST', 'TYPE', 'normal'));
        for (const match of list.matchAll(/\bname=(\S+)/g)) if (match[1]!.startsWith(prefix)) live.add(match[1]!.slice(prefix.length));
      }
    } catch {
      return null;
    }
    return live;
  }

  /** Workers whose last heartbeat is at or after `since`. */
  countSince(since: number): Promise<number> {
    return this.redis.zcount(this.keys.workers(), since, '+inf');
  }
}
