import { setTimeout as wait } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import {
  connectRedis,
  createRedisConnection,
  feedCoverage,
  feedTail,
  parseFeedEntry,
  readFeedAfter,
  streamIdOrder,
  type Keyspace,
  type RedisClient,
  type RedisTarget,
} from '@punctual/store';
import {
  CLOSE_FEED_UNAVAILABLE,
  CLOSE_GOING_AWAY,
  FeedSubscriber,
  type FeedFilter,
  type RelayedEvent,
} from './subscriber.js';

export interface FeedRelayOptions {
  /** Where Redis is: each partition's reader gets a connection of its own (XREAD BLOCK holds it). */
  redisTarget: RedisTarget;
  /** The API's connection, for the short reads of a catch-up. */
  redis: RedisClient;
  keys: Keyspace;
  log: FastifyBaseLogger;
  pingIntervalMs: number;
  maxBufferedBytes: number;
}

export interface FeedSubscription extends FeedFilter {
  /** Resume point, one stream id per partition; absent = from now on. */
  since?: string[];
  /** sha256 of the key-store key the client authenticated with; '' for any other credential. */
  keyHash?: string;
}

const READ_BATCH = 1000;
const READ_BLOCK_MS = 5000;
const READ_RETRY_MS = 1000;
const CATCH_UP_BATCH = 100;
/** How long a closing client has to answer before its socket is cut at shutdown. */
const CLOSE_GRACE_MS = 2000;

/**
 * Follows every partition's feed stream with one reader per partition (per API instance) and
 * fans each event out in memory to the WebSocket clients that want it, in stream order.
 */
export class FeedRelay {
  private readonly streams: string[];
  private readonly readers: RedisClient[] = [];
  /** Last entry id read from each partition's stream. */
  private readonly positions: string[] = [];
  private readonly subscribers = new Set<FeedSubscriber>();
  private readonly byTenant = new Map<string, Set<FeedSubscriber>>();
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly options: FeedRelayOptions) {
    this.streams = options.keys.allTags().map((tag) => options.keys.events(tag));
  }

  /** Starts reading after the newest entry each stream has now: earlier events are only replayed on request. */
  static async start(options: FeedRelayOptions): Promise<FeedRelay> {
    const relay = new FeedRelay(options);
    try {
      for (const stream of relay.streams) {
        const reader = createRedisConnection(options.redisTarget, 'worker', { connectionName: `${options.keys.prefix}:feed-reader` });
        reader.on('error', (err) => options.log.debug({ err: err.message }, 'feed reader connection error'));
        relay.readers.push(reader);
        await connectRedis(reader);
        relay.positions.push(await feedTail(reader, stream));
      }
    } catch (err) {
      await relay.close();
      throw err;
    }
    relay.loops = relay.streams.map((_, partition) => relay.follow(partition));
    relay.heartbeat = setInterval(() => relay.checkHeartbeats(), options.pingIntervalMs);
    return relay;
  }

  get running(): boolean {
    return !this.closed;
  }

  get clientCount(): number {
    return this.subscribers.size;
  }

  /** Sends the feed to a client: from now on, or everything after `since` first. */
  subscribe(socket: WebSocket, { since, keyHash = '', ...filter }: FeedSubscription): FeedSubscriber {
    const subscriber = new FeedSubscriber(socket, {
      filter,
      keyHash,
      start: since ?? this.positions,
      catchingUp: since !== undefined,
      maxBufferedBytes: this.options.maxBufferedBytes,
      onDrop: (s) => this.remove(s),
    });
    if (this.closed) {
      subscriber.drop(CLOSE_GOING_AWAY, 'server shutting down');
      return subscriber;
    }
    this.subscribers.add(subscriber);
    let tenantSubscribers = this.byTenant.get(filter.tenant);
    if (!tenantSubscribers) this.byTenant.set(filter.tenant, (tenantSubscribers = new Set()));
    tenantSubscribers.add(subscriber);
    socket.on('close', () => this.remove(subscriber));
    if (since) void this.catchUp(subscriber);
    return subscriber;
  }

  /** The key-store keys open clients authenticated with. */
  keyHashes(): Set<string> {
    const hashes = new Set<string>();
    for (const subscriber of this.subscribers) if (subscriber.keyHash !== '') hashes.add(subscriber.keyHash);
    return hashes;
  }

  /** Closes every client that matches (their credential no longer holds); how many there were. */
  dropWhere(matches: (subscriber: FeedSubscriber) => boolean, code: number, reason: string): number {
    let dropped = 0;
    for (const subscriber of [...this.subscribers]) {
      if (!matches(subscriber)) continue;
      subscriber.drop(code, reason);
      dropped++;
    }
    return dropped;
  }

  /**
   * Stops reading and tells every client the server is going away (1001); a client that has not
   * completed the close handshake after CLOSE_GRACE_MS is cut off.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.stopping.abort();
    const sockets = [...this.subscribers].map((subscriber) => subscriber.socket);
    for (const subscriber of this.subscribers) subscriber.drop(CLOSE_GOING_AWAY, 'server shutting down');
    setTimeout(() => {
      for (const socket of sockets) socket.terminate();
    }, CLOSE_GRACE_MS).unref();
    for (const reader of this.readers) reader.disconnect();
    await Promise.all(this.loops);
  }

  private remove(subscriber: FeedSubscriber): void {
    this.subscribers.delete(subscriber);
    const tenantSubscribers = this.byTenant.get(subscriber.filter.tenant);
    tenantSubscribers?.delete(subscriber);
    if (tenantSubscribers?.size === 0) this.byTenant.delete(subscriber.filter.tenant);
  }

  /** XREAD BLOCK from the last id seen, never `$`: after a reconnect nothing in between is skipped. */
  private async follow(partition: number): Promise<void> {
    const reader = this.readers[partition]!;
    const stream = this.streams[partition]!;
    while (!this.closed) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        // a read queued while Redis is away is never answered after disconnect(): close ends the wait
        reply = await unlessAborted(
          reader.xread('COUNT', READ_BATCH, 'BLOCK', READ_BLOCK_MS, 'STREAMS', stream, this.positions[partition]!),
          this.stopping.signal,
        );
      } catch (err) {
        if (this.closed) return;
        this.options.log.warn({ err, stream }, 'feed read failed; retrying');
        await wait(READ_RETRY_MS, undefined, { signal: this.stopping.signal }).catch(() => {});
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, flat] of entries) {
          this.positions[partition] = id;
          if (this.byTenant.size > 0) this.fanOut(partition, id, flat);
        }
      }
    }
  }

  /** Parsed and serialized once, and only when some client of the event's tenant is listening. */
  private fanOut(partition: number, id: string, flat: string[]): void {
    const tenantSubscribers = this.byTenant.get(fieldValue(flat, 'tenant') ?? '');
    if (!tenantSubscribers) return;
    const event = relayed(id, flat);
    if (!event) return;
    for (const subscriber of tenantSubscribers) subscriber.offer(partition, event);
  }

  /**
   * Replays each partition after the client's resume point while live events wait in its
   * backlog; the backlog then follows, without what the replay already sent. Should the backlog
   * overflow, the replay runs again (those events are in Redis) before going live.
   */
  private async catchUp(subscriber: FeedSubscriber): Promise<void> {
    try {
      let resync = false;
      for (let partition = 0; partition < this.streams.length; partition++) {
        const coverage = await feedCoverage(this.options.redis, this.streams[partition]!, subscriber.position(partition));
        if (coverage !== 'covered') resync = true;
        if (coverage === 'unknown') subscriber.rewind(partition);
      }
      if (resync) subscriber.sendResync();
      do {
        subscriber.beginCatchUpPass();
        for (let partition = 0; partition < this.streams.length; partition++) {
          if (!(await this.replay(subscriber, partition))) return;
        }
      } while (subscriber.backlogOverflowedThisPass);
      subscriber.goLive();
    } catch (err) {
      if (this.closed) return;
      this.options.log.warn({ err }, 'feed catch-up failed; client told to reconnect');
      subscriber.drop(CLOSE_FEED_UNAVAILABLE, 'feed unavailable: reconnect with since');
    }
  }

  /** Sends a partition's stream after the client's position; false once the client is gone. */
  private async replay(subscriber: FeedSubscriber, partition: number): Promise<boolean> {
    const stream = this.streams[partition]!;
    let after = subscriber.position(partition);
    for (;;) {
      const entries = await readFeedAfter(this.options.redis, stream, after, CATCH_UP_BATCH);
      if (!subscriber.open || this.closed) return false;
      if (entries.length === 0) return true;
      for (const [id, flat] of entries) {
        // another tenant's event is passed over unparsed: a replay costs what the client's own events cost
        if (fieldValue(flat, 'tenant') !== subscriber.filter.tenant) {
          subscriber.passOver(partition, id);
        } else {
          const event = relayed(id, flat);
          if (event) subscriber.deliver(partition, event);
        }
        after = id;
      }
      await subscriber.written();
    }
  }

  /** Pings every client; one that did not answer the previous ping is cut off. */
  private checkHeartbeats(): void {
    for (const subscriber of this.subscribers) {
      if (!subscriber.alive) {
        this.remove(subscriber);
        subscriber.socket.terminate();
        continue;
      }
      subscriber.alive = false;
      subscriber.socket.ping();
    }
  }
}

function relayed(id: string, flat: string[]): RelayedEvent | null {
  const entry = parseFeedEntry(id, flat);
  if (!entry) return null;
  return {
    id,
    order: streamIdOrder(id),
    tenant: entry.tenant,
    channel: entry.record.channel,
    status: entry.record.status,
    head: `{"event":"${entry.event}","id":"`,
    tail: `","data":${JSON.stringify(entry.record)}}`,
    frames: new Map(),
  };
}

function fieldValue(flat: string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

/**
 * `promise`, or null as soon as `signal` aborts. The abort listener is removed once the promise
 * settles: a long-lived Promise.race against one shared "stopped" promise would keep every reply
 * it ever raced alive.
 */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
