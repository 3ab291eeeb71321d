import type { Cluster, Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import {
  LISTED_STATUSES,
  type Channel,
  type ListedStatus,
  type MessageRecord,
  type Template,
} from '@punctual/shared';
import { Keyspace } from './keys.js';
import { fieldsFromFlat, toRecord, type StoredFields } from './record.js';
import { encodeCursor, type Boundary } from './cursor.js';
import * as scripts from './scripts.js';
import { dataNodes } from './redis.js';

export type RedisClient = Redis | Cluster;

export interface NewMessage {
  recipient: string;
  channel: Channel;
  sendAt: number;
  message?: string;
  template?: Template;
  metadata?: Record<string, unknown>;
  callbackUrl?: string;
}

/** Fields a PUT may change; `null` removes an optional field. */
export type MessagePatch = Partial<{ [K in keyof NewMessage]: NewMessage[K] | null }>;

export type Refusal = 'not_found' | 'not_scheduled' | 'not_failed';
export type Transition =
  | { ok: true; record: MessageRecord }
  | { ok: false; reason: Refusal; status?: string };

export type Claim =
  | { outcome: 'claimed'; record: MessageRecord; fields: StoredFields }
  | { outcome: 'early'; sendAt: number }
  | { outcome: 'final'; status: string }
  | { outcome: 'missing' };

export interface ListOptions {
  limit: number;
  cursor?: Boundary;
  channel?: string;
  recipient?: string;
  from?: number;
  to?: number;
}

export interface Page {
  messages: MessageRecord[];
  nextCursor: string | null;
}

/** Upper bounds (ms) of the delivery-lateness histogram buckets. */
export const LATENESS_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

type Reply = [string, ...unknown[]];
type SlotScript = 'reserveScheduledSlot' | 'releaseScheduledSlot';
type ScriptName = Exclude<keyof typeof scripts, 'listPage' | 'expireMessages' | SlotScript>;
type ScriptCommands = {
  [K in keyof typeof scripts]: (key: string, ...args: (string | number)[]) => Promise<unknown>;
};

export interface MessageStoreOptions {
  keyspace: Keyspace;
  /** Approximate length the feed stream is trimmed to (per partition). */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms: how long delivered, failed and canceled records are kept. */
  retentionMs?: number;
}

export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** Fleet-wide transition counts: `<outcome>:<channel>` → count, summed over partitions. */
export type OutcomeCounts = Map<string, number>;

/** The fleet-wide delivery-lateness histogram; `buckets` are per bucket, not cumulative. */
export interface LatenessHistogram {
  /** Count of deliveries in each bucket, keyed by upper bound in ms (Infinity = beyond the last). */
  buckets: Map<number, number>;
  count: number;
  sumMs: number;
}

/**
 * The message records, the source of truth. Every change of state is one Lua script (see
 * scripts.ts); reads of one message and list pages are O(log n).
 *
 * Each tenant also has a counter of its `scheduled` messages (the MAX_SCHEDULED_PER_TENANT cap).
 * It lives outside the partitions, so it cannot change in the same script as a record: the API
 * reserves a slot before scheduling, and the transitions that leave or re-enter `scheduled`
 * (cancel, claim, retry of a failure) adjust it right after their script. A process that dies in
 * between leaves the counter off by its in-flight messages; `scheduledDrift` finds that and the
 * worker's reconciler corrects it.
 */
export class MessageStore {
  readonly keys: Keyspace;
  private readonly redis: RedisClient & ScriptCommands;
  private readonly maxLen: string;
  private readonly retentionMs: number;
  private readonly newId = monotonicFactory();

  constructor(redis: RedisClient, { keyspace, eventsMaxLen, retentionMs = DEFAULT_RETENTION_MS }: MessageStoreOptions) {
    for (const [name, lua] of Object.entries(scripts)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 1, lua });
    }
    this.redis = redis as RedisClient & ScriptCommands;
    this.keys = keyspace;
    this.maxLen = String(eventsMaxLen);
    this.retentionMs = Math.max(1, Math.round(retentionMs));
  }

  newMessageId(now = Date.now()): string {
    return this.newId(now);
  }

  async schedule(tenant: string, id: string, input: NewMessage, now: number): Promise<MessageRecord> {
    const fields: StoredFields = {
      id,
      tenant,
      status: 'scheduled',
      createdAt: String(now),
      updatedAt: String(now),
      attempts: '0',
      version: '1',
      ...serialize(input),
    };
    const reply = (await this.redis.scheduleMessage(
      this.keys.record(id),
      this.keys.tagOf(id),
      now,
      this.maxLen,
      ...Object.entries(fields).flat(),
    )) as Reply;
    if (reply[0] !== 'ok') throw new Error(`message id ${id} already exists`);
    return toRecord(fieldsFromFlat(reply[1] as string[]));
  }

  /** One message of a tenant, in any state; another tenant's message is not found. */
  async get(tenant: string, id: string): Promise<MessageRecord | null> {
    const fields = await this.fields(id);
    return fields && fields.tenant === tenant ? toRecord(fields) : null;
  }

  async fields(id: string): Promise<StoredFields | null> {
    const flat = await this.redis.hgetall(this.keys.record(id));
    return flat.id ? flat : null;
  }

  update(tenant: string, id: string, patch: MessagePatch, now: number): Promise<Transition> {
    const values: Record<string, string | null> = {};
    for (const [field, value] of Object.entries(serialize(patch))) values[field] = value;
    for (const [field, value] of Object.entries(patch)) if (value === null) values[field] = null;
    return this.transition('updateMessage', id, now, tenant, JSON.stringify(values));
  }

  async cancel(tenant: string, id: string, now: number): Promise<Transition> {
    const result = await this.transition('cancelMessage', id, now, tenant, this.retentionMs);
    if (result.ok) await this.releaseScheduled(tenant);
    return result;
  }

  async rescheduleFailed(tenant: string, id: string, now: number): Promise<Transition> {
    const result = await this.transition('rescheduleFailedMessage', id, now, tenant);
    if (result.ok) await this.redis.incr(this.keys.tenantScheduled(tenant)).catch(() => {});
    return result;
  }

  async claim(id: string, now: number): Promise<Claim> {
    const reply = (await this.call('claimMessage', id, now)) as Reply;
    switch (reply[0]) {
      case 'claimed': {
        const fields = fieldsFromFlat(reply[1] as string[]);
        if (reply[2] === 'scheduled') await this.releaseScheduled(fields.tenant!);
        return { outcome: 'claimed', record: toRecord(fields), fields };
      }
      case 'early':
        return { outcome: 'early', sendAt: Number(reply[1]) };
      case 'final':
        return { outcome: 'final', status: String(reply[1]) };
      default:
        return { outcome: 'missing' };
    }
  }

  async markDelivered(id: string, now: number, providerMessageId: string, latenessMs: number) {
    const bucket = LATENESS_BUCKETS_MS.find((le) => latenessMs <= le);
    return this.workerTransition('deliverMessage', id, now, providerMessageId, bucket ? `le:${bucket}` : 'le:inf', Math.max(0, Math.round(latenessMs)), this.retentionMs);
  }

  markFailed(id: string, now: number, lastError: string) {
    return this.workerTransition('failMessage', id, now, lastError, this.retentionMs);
  }

  markRetrying(id: string, now: number, lastError: string, nextAttemptAt: number) {
    return this.workerTransition('retryMessage', id, now, lastError, nextAttemptAt);
  }

  /** Gives an unused claim back (provider rate limit): the attempt it counted is returned. */
  releaseClaim(id: string, now: number, lastError: string) {
    return this.workerTransition('releaseClaim', id, now, lastError);
  }

  /** A page of a tenant's list, merged across partitions from a (score, id) boundary. */
  async list(tenant: string, status: ListedStatus, options: ListOptions): Promise<Page> {
    const dir = LISTED_STATUSES[status];
    const filter = { channel: options.channel, recipient: options.recipient };
    const channelCheck = options.recipient && options.channel ? options.channel : '';
    const replies = (await Promise.all(
      this.keys.allTags().map((tag) =>
        this.redis.listPage(
          this.keys.index(tag, tenant, status, filter),
          tag,
          dir,
          options.limit,
          options.cursor ? options.cursor.score : '',
          options.cursor ? options.cursor.id : '',
          options.from ?? '-inf',
          options.to ?? '+inf',
          channelCheck,
        ),
      ),
    )) as unknown[][];
    return mergePages(replies, dir, options.limit);
  }

  /** Takes a scheduled-message slot of a tenant; false when `cap` are taken. */
  async reserveScheduled(tenant: string, cap: number): Promise<boolean> {
    return (await this.redis.reserveScheduledSlot(this.keys.tenantScheduled(tenant), cap)) !== -1;
  }

  /**
   * Gives slots back. The transition it follows has happened already, so a failure here is not
   * the caller's: it is swallowed, and the counter stays high until the reconciler corrects it.
   */
  async releaseScheduled(tenant: string, count = 1): Promise<void> {
    await this.redis.releaseScheduledSlot(this.keys.tenantScheduled(tenant), count).catch(() => {});
  }

  async scheduledCount(tenant: string): Promise<number> {
    return Number((await this.redis.get(this.keys.tenantScheduled(tenant))) ?? 0);
  }

  /** Tenants that have a scheduled-message counter (SCAN runs per server: on a Cluster, every master). */
  async countedTenants(): Promise<string[]> {
    const tenants: string[] = [];
    const pattern = this.keys.tenantScheduledPattern();
    const [head, tail] = pattern.split('*') as [string, string];
    for (const node of dataNodes(this.redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        for (const key of keys) tenants.push(key.slice(head.length, key.length - tail.length));
      } while (cursor !== '0');
    }
    return tenants;
  }

  /**
   * Counter minus the tenant's scheduled messages (summed over the partitions), or null when the
   * counter moved while they were counted.
   */
  async scheduledDrift(tenant: string): Promise<number | null> {
    const before = await this.scheduledCount(tenant);
    const sizes = await Promise.all(this.keys.allTags().map((tag) => this.redis.zcard(this.keys.index(tag, tenant, 'scheduled'))));
    const after = await this.scheduledCount(tenant);
    if (before !== after) return null;
    return after - sizes.reduce((sum, n) => sum + n, 0);
  }

  /** Moves the counter by `-drift`, relative, so operations running meanwhile are kept. */
  async correctScheduled(tenant: string, drift: number): Promise<void> {
    await this.redis.decrby(this.keys.tenantScheduled(tenant), drift);
  }

  /** Scheduled messages (every tenant) whose `sendAt` is at or before `until`, oldest first. */
  dueIds(tag: string, until: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.due(tag), '-inf', until, 'LIMIT', 0, count);
  }

  /** Messages claimed for sending at or before `until`. */
  sendingIds(tag: string, until: number, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.sending(tag), '-inf', until, 'LIMIT', 0, count);
  }

  /**
   * Deletes up to `limit` final records of a partition whose retention ended at or before `now`,
   * with their index entries. Returns how many were deleted and how many expiry entries were due.
   */
  async expire(tag: string, now: number, limit: number): Promise<{ expired: number; examined: number }> {
    const [expired, examined] = (await this.redis.expireMessages(this.keys.expiring(tag), tag, now, limit)) as [number, number];
    return { expired, examined };
  }

  /** Scheduled, delivered, failed, canceled and retried counts by channel, over every partition. */
  async outcomeCounts(): Promise<OutcomeCounts> {
    const totals: OutcomeCounts = new Map();
    for (const hash of await Promise.all(this.keys.allTags().map((tag) => this.redis.hgetall(this.keys.stats(tag))))) {
      for (const [field, value] of Object.entries(hash)) totals.set(field, (totals.get(field) ?? 0) + Number(value));
    }
    return totals;
  }

  /** The delivery-lateness histogram over every partition. */
  async latenessHistogram(): Promise<LatenessHistogram> {
    const histogram: LatenessHistogram = { buckets: new Map(), count: 0, sumMs: 0 };
    for (const le of [...LATENESS_BUCKETS_MS, Infinity]) histogram.buckets.set(le, 0);
    for (const hash of await Promise.all(this.keys.allTags().map((tag) => this.redis.hgetall(this.keys.lateness(tag))))) {
      for (const [field, value] of Object.entries(hash)) {
        if (field === 'count') histogram.count += Number(value);
        else if (field === 'sum') histogram.sumMs += Number(value);
        else {
          const le = field === 'le:inf' ? Infinity : Number(field.slice(3));
          histogram.buckets.set(le, (histogram.buckets.get(le) ?? 0) + Number(value));
        }
      }
    }
    return histogram;
  }

  private async transition(name: ScriptName, id: string, now: number, ...args: (string | number)[]): Promise<Transition> {
    const reply = (await this.call(name, id, now, ...args)) as Reply;
    if (reply[0] === 'ok') return { ok: true, record: toRecord(fieldsFromFlat(reply[1] as string[])) };
    return { ok: false, reason: reply[0] as Refusal, status: reply[1] as string | undefined };
  }

  /** A worker's transition: null when the message had already left `sending`. */
  private async workerTransition(name: ScriptName, id: string, now: number, ...args: (string | number)[]) {
    const reply = (await this.call(name, id, now, ...args)) as Reply;
    return reply[0] === 'ok' ? toRecord(fieldsFromFlat(reply[1] as string[])) : null;
  }

  private call(name: ScriptName, id: string, now: number, ...args: (string | number)[]) {
    return this.redis[name](this.keys.record(id), this.keys.tagOf(id), now, this.maxLen, ...args);
  }
}

function serialize(input: MessagePatch): StoredFields {
  const fields: StoredFields = {};
  for (const [field, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    fields[field] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return fields;
}

interface Entry {
  id: string;
  score: number;
  fields: StoredFields;
}

/**
 * k-way merge of per-partition pages. A partition that has more stops being complete at its
 * boundary, so the merged page may only include what sorts before the earliest such boundary.
 */
function mergePages(replies: unknown[][], dir: 'asc' | 'desc', limit: number): Page {
  const sign = dir === 'asc' ? 1 : -1;
  const compare = (a: Boundary, b: Boundary) =>
    sign * (a.score - b.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let bound: Boundary | null = null;
  const entries: Entry[] = [];
  for (const reply of replies) {
    if (reply[0] === 1) {
      const b = { score: Number(reply[1]), id: String(reply[2]) };
      if (!bound || compare(b, bound) < 0) bound = b;
    }
    for (const item of reply.slice(3) as [string, string, string[]][]) {
      entries.push({ id: item[0], score: Number(item[1]), fields: fieldsFromFlat(item[2]) });
    }
  }
  const candidates = entries
    .filter((e) => !bound || compare(e, bound) <= 0)
    .sort(compare);
  const page = candidates.slice(0, limit);
  let next: Boundary | null = bound;
  if (candidates.length > limit) next = page[page.length - 1]!;
  return {
    messages: page.map((e) => toRecord(e.fields)),
    nextCursor: next ? encodeCursor({ score: next.score, id: next.id }) : null,
  };
}
