import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import type { MessageEventName } from '../packages/shared/src/index.js';

export function redisUrl(): string {
  return inject('redisUrl');
}

/** A QUEUE_PREFIX no other test file or run uses. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`;
}

/** Every key of a prefix: the partitions' `{prefix-pN}…` and the global `{prefix}:…` (on a Cluster, of every master). */
export async function keysOfPrefix(redis: Redis | Cluster, prefix: string): Promise<string[]> {
  if (redis instanceof Cluster) return (await Promise.all(redis.nodes('master').map((node) => keysOfPrefix(node, prefix)))).flat();
  const found: string[] = [];
  for (const pattern of [`{${prefix}-p*`, `{${prefix}}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found;
}

/**
 * Deletes every key of a prefix (all partitions and the global keys), on one Redis or on every
 * master of a Cluster (`url` = its nodes). On a Cluster a multi-key UNLINK must stay in one slot,
 * so each key is unlinked on its own, pipelined per master.
 */
export async function deletePrefix(prefix: string, url: string | { host: string; port: number }[] = redisUrl()): Promise<void> {
  if (typeof url === 'string') {
    const redis = new Redis(url);
    try {
      const keys = await keysOfPrefix(redis, prefix);
      for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
    } finally {
      redis.disconnect();
    }
    return;
  }
  const cluster = new Cluster(url);
  try {
    await new Promise((resolve, reject) => cluster.once('ready', resolve).once('error', reject));
    await Promise.all(
      cluster.nodes('master').map(async (node) => {
        const pipeline = node.pipeline();
        for (const key of await keysOfPrefix(node, prefix)) pipeline.unlink(key);
        await pipeline.exec();
      }),
    );
  } finally {
    cluster.disconnect();
  }
}

interface FeedEntry {
  streamId: string;
  event: MessageEventName;
  tenant: string;
  messageId: string;
  data: Record<string, string>;
}

/**
 * Follows the live feed stream of a prefix (partition 0, or the one given) from where it is now,
 * so a test waits for the event it expects instead of sleeping.
 */
export class FeedWatcher {
  private readonly redis: Redis;
  private readonly key: string;
  private lastId = '0';
  private closed = false;
  readonly seen: FeedEntry[] = [];
  private waiters: { match: (e: FeedEntry) => boolean; resolve: (e: FeedEntry) => void }[] = [];
  private loop: Promise<void> = Promise.resolve();

  private constructor(prefix: string, url: string, partition: number) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    this.key = `{${prefix}-p${partition}}:feed:events`;
  }

  static async start(prefix: string, url = redisUrl(), partition = 0): Promise<FeedWatcher> {
    const watcher = new FeedWatcher(prefix, url, partition);
    const last = await watcher.redis.xrevrange(watcher.key, '+', '-', 'COUNT', 1);
    watcher.lastId = last[0]?.[0] ?? '0';
    watcher.loop = watcher.read();
    return watcher;
  }

  private async read() {
    while (!this.closed) {
      const reply = await this.redis.xread('COUNT', 1000, 'BLOCK', 200, 'STREAMS', this.key, this.lastId).catch(() => null);
      if (!reply) continue;
      for (const [, entries] of reply) {
        for (const [streamId, flat] of entries) {
          this.lastId = streamId;
          const fields: Record<string, string> = {};
          for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
          const data = JSON.parse(fields.data!) as Record<string, string>;
          const entry: FeedEntry = { streamId, event: fields.event as MessageEventName, tenant: fields.tenant!, messageId: data.id!, data };
          this.seen.push(entry);
          this.waiters = this.waiters.filter((w) => (w.match(entry) ? (w.resolve(entry), false) : true));
        }
      }
    }
  }

  /** Resolves with the first event (already seen or coming) that matches. */
  waitFor(event: MessageEventName, messageId: string, timeoutMs = 15_000): Promise<FeedEntry> {
    const match = (e: FeedEntry) => e.event === event && e.messageId === messageId;
    const seen = this.seen.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} for ${messageId} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  /** Resolves when `count` events of a kind have been seen. */
  async waitForCount(event: MessageEventName, count: number, timeoutMs = 30_000): Promise<FeedEntry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = this.seen.filter((e) => e.event === event);
      if (matching.length >= count) return matching;
      if (Date.now() > deadline) throw new Error(`only ${matching.length}/${count} ${event} events within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const waiter = { match: (e: FeedEntry) => e.event === event, resolve: () => resolve() };
        this.waiters.push(waiter);
        setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
    }
  }

  events(messageId: string): MessageEventName[] {
    return this.seen.filter((e) => e.messageId === messageId).map((e) => e.event);
  }

  async close() {
    this.closed = true;
    await this.loop;
    this.redis.disconnect();
  }
}

