import type { ChainableCommander } from 'ioredis';
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { LISTED_STATUSES, type Channel, type ListedStatus, type MessageRecord, type QuietHours, type ReceiptStatus, type Template } from '@punctual/shared';
import { Keyspace } from './keys.js';
import { parseStored, storedValues, toRecord, type StoredFields } from './record.js';
import { encodeCursor, type Boundary } from './cursor.js';
import { defineScripts, type RedisClient } from './redis.js';
import * as transitions from './lua/transitions.js';
import { listPage } from './lua/list-page.js';
import { transitionArgs } from './lua/prelude.js';
import { smsFieldsOf, type SmsFields } from './sms-fields.js';

export interface NewMessage {
  recipient: string;
  channel: Channel;
  sendAt: number;
  message?: string;
  template?: Template;
  metadata?: Record<string, unknown>;
  callbackUrl?: string;
  /** IANA zone the request's local times were read in, kept so a change is read the same way. */
  timeZone?: string;
  /** Local daily window nothing is sent in (needs timeZone); `sendAt` is already out of it. */
  quietHours?: QuietHours;
  /** The time asked for, when quiet hours moved `sendAt` to the end of their window. */
  requestedSendAt?: number;
}

/** Fields a PUT may change; `null` removes an optional field. */
export type MessagePatch = Partial<{ [K in keyof NewMessage]: NewMessage[K] | null }>;

/** A patch as stored: with the SMS fields of its text (see `smsFieldsOf`), which the update script drops off a non-SMS record. */
export type StoredPatch = MessagePatch & Partial<{ [K in keyof SmsFields]: SmsFields[K] | null }>;

/**
 * Why a transition was refused. `invalid`: the change would make a record no request could create.
 * `opted_out`: the recipient is suppressed on the channel (detail: `deployment` or `tenant`).
 * `recheck`: a new sendAt worked out without the record's quiet hours, and the record has some.
 */
export type Refusal = 'not_found' | 'not_scheduled' | 'not_failed' | 'version_mismatch' | 'invalid' | 'quota' | 'opted_out' | 'recheck';
export type Transition =
  | { ok: true; record: MessageRecord }
  | { ok: false; reason: Refusal; detail?: string };

/** A message taken for sending: its record and whose it is. */
export interface ClaimedMessage {
  tenant: string;
  record: MessageRecord;
  /** The status it was claimed from: `scheduled` for a first attempt, `sending` for another one. */
  was: 'scheduled' | 'sending';
}

export type Claim =
  | ({ outcome: 'claimed' } & ClaimedMessage)
  | { outcome: 'early'; sendAt: number }
  | { outcome: 'final'; status: string }
  | { outcome: 'missing' };

export interface ListOptions {
  limit: number;
  cursor?: Boundary;
  channel?: string;
  recipient?: string;
  receipt?: ReceiptStatus;
  from?: number;
  to?: number;
  /** Only the messages of one batch (scheduled list only); with `channel`, checked on each record. */
  batchId?: string;
}

export interface Page {
  messages: MessageRecord[];
  nextCursor: string | null;
}

/** Upper bounds (ms) of the delivery-lateness histogram buckets. */
export const LATENESS_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

type Reply = [string, ...unknown[]];
type TransitionName = keyof typeof transitions;
type ScriptCommands = {
  [K in TransitionName | 'listPage']: (key: string, ...args: (string | number)[]) => Promise<unknown>;
};

export interface MessageStoreOptions {
  keyspace: Keyspace;
  /** Approximate length the feed stream is trimmed to (per partition). */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms: how long delivered, failed and canceled records are kept. */
  retentionMs?: number;
}

/**
 * The message records, the source of truth: reads, list pages, and the Lua transitions (see
 * lua/transitions.ts), each returning a typed outcome. Nothing here touches a queue: the
 * Scheduler puts transitions and jobs together. Reading one message is one GET; a list page finds
 * its boundary in O(log² n) at worst (see lua/list-page.ts), never by scanning.
 */
export class MessageStore {
  readonly keys: Keyspace;
  private readonly redis: RedisClient & ScriptCommands;
  private readonly common: (string | number)[];
  private readonly newId = monotonicFactory(pooledRandom());

  constructor(redis: RedisClient, { keyspace, eventsMaxLen, retentionMs = DEFAULT_RETENTION_MS }: MessageStoreOptions) {
    defineScripts(redis, { ...transitions, listPage });
    this.redis = redis as RedisClient & ScriptCommands;
    this.keys = keyspace;
    this.common = transitionArgs(eventsMaxLen, retentionMs);
  }

  newMessageId(now = Date.now()): string {
    return this.newId(now);
  }

  /** The stored fields of a new scheduled message (one made alone, or an item of a batch). */
  newFields(tenant: string, id: string, input: NewMessage, now: number, batchId?: string): StoredFields {
    const time = String(now);
    const sms = smsFieldsOf(input.channel, input.message);
    // attempts 0, version 1 and updatedAt = createdAt are left out until they change: every byte
    // of a record is stored twice (the record, its feed event)
    return { id, tenant, status: 'scheduled', createdAt: time, ...storedValues({ ...input, ...sms, batchId }) };
  }

  /**
   * Appends the scheduling of a new message to a MULTI of its partition: refused when the id
   * exists or the tenant has `cap` scheduled messages in the partition. Read the outcome with
   * `scheduleOutcome`.
   */
  scheduleIn(tx: ChainableCommander, fields: StoredFields, cap: number, now: number): void {
    const id = fields.id!;
    (tx as unknown as ScriptCommands).scheduleMessage(this.keys.record(id), this.keys.tagOf(id), now, ...this.common, cap, JSON.stringify(fields));
  }

  static scheduleOutcome(reply: unknown): 'ok' | 'exists' | 'quota' | 'opted_out' {
    return (reply as Reply)[0] as 'ok' | 'exists' | 'quota' | 'opted_out';
  }

  /** Which list refused a schedule (`opted_out`): `deployment` or `tenant`. */
  static scheduleDetail(reply: unknown): string | undefined {
    return (reply as Reply)[1] as string | undefined;
  }

  /** One message of a tenant, in any state; another tenant's message is not found. */
  async get(tenant: string, id: string): Promise<MessageRecord | null> {
    const fields = await this.fields(id);
    return fields && fields.tenant === tenant ? toRecord(fields) : null;
  }

  /** The stored fields of any tenant's message. */
  async fields(id: string): Promise<StoredFields | null> {
    const json = await this.redis.get(this.keys.record(id));
    return json ? parseStored(json) : null;
  }

  /** A tenant's scheduled messages, over every partition. */
  async scheduledCount(tenant: string): Promise<number> {
    const sizes = await Promise.all(this.keys.allTags().map((tag) => this.redis.zcard(this.keys.index(tag, tenant, 'scheduled'))));
    return sizes.reduce((sum, n) => sum + n, 0);
  }

  /**
   * `ifVersion`: the version the client last saw; another one refuses the change. `unlessQuiet`:
   * the patch's sendAt ignored quiet hours, so a record that has some refuses it (`recheck`).
   */
  update(tenant: string, id: string, patch: StoredPatch, now: number, ifVersion?: number, unlessQuiet = false): Promise<Transition> {
    const values: Record<string, string | null> = storedValues(patch);
    for (const [field, value] of Object.entries(patch)) if (value === null) values[field] = null;
    return this.transition('updateMessage', id, now, tenant, JSON.stringify(values), ifVersion === undefined ? '' : String(ifVersion), unlessQuiet ? '1' : '');
  }

  /** `ifVersion`: refused as `version_mismatch` unless the record is at this version. */
  cancel(tenant: string, id: string, now: number, ifVersion?: number): Promise<Transition> {
    return this.transition('cancelMessage', id, now, tenant, ifVersion === undefined ? '' : String(ifVersion));
  }

  /** failed → scheduled now, unless the tenant has `cap` scheduled messages in the partition. */
  rescheduleFailed(tenant: string, id: string, now: number, cap: number): Promise<Transition> {
    return this.transition('rescheduleFailedMessage', id, now, tenant, cap);
  }

  /** `worker`: the claiming worker process, kept while the message is sending (see Maintenance.staleClaims). */
  async claim(id: string, now: number, worker = ''): Promise<Claim> {
    const reply = (await this.call('claimMessage', id, now, worker)) as Reply;
    switch (reply[0]) {
      case 'claimed': {
        const fields = parseStored(reply[1] as string);
        return { outcome: 'claimed', tenant: fields.tenant!, record: toRecord(fields), was: reply[2] as 'scheduled' | 'sending' };
      }
      case 'early':
        return { outcome: 'early', sendAt: Number(reply[1]) };
      case 'final':
        return { outcome: 'final', status: String(reply[1]) };
      default:
        return { outcome: 'missing' };
    }
  }

  /**
   * `lookupAt`: when to look the receipt up at the provider (Twilio), if ever. `receipt`: the record
   * after a receipt that arrived before this transition and was applied by it.
   */
  async markDelivered(id: string, now: number, providerMessageId: string, latenessMs: number, lookupAt?: number) {
    const bucket = LATENESS_BUCKETS_MS.find((le) => latenessMs <= le);
    const lateness = [bucket ? `le:${bucket}` : 'le:inf', Math.max(0, Math.round(latenessMs))];
    const reply = (await this.call('deliverMessage', id, now, providerMessageId, ...lateness, lookupAt ?? '')) as Reply;
    if (reply[0] !== 'ok') return null;
    const fields = parseStored(reply[1] as string);
    const receipt = typeof reply[2] === 'string' ? toRecord(parseStored(reply[2])) : undefined;
    return { tenant: fields.tenant!, record: toRecord(fields), ...(receipt ? { receipt } : {}) };
  }

  markFailed(id: string, now: number, lastError: string) {
    return this.workerTransition('failMessage', id, now, lastError);
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
    const filter = { channel: options.channel, recipient: options.recipient, receipt: options.receipt };
    const { batchId } = options;
    // the narrowest index is read; the other filters are checked on each record
    const channelCheck = (options.recipient || options.receipt || batchId) && options.channel ? options.channel : '';
    const receiptCheck = (options.recipient || batchId) && options.receipt ? options.receipt : '';
    const replies = (await Promise.all(
      this.keys.allTags().map((tag) =>
        this.redis.listPage(
          batchId ? this.keys.batchScheduled(tag, tenant, batchId) : this.keys.index(tag, tenant, status, filter),
          tag,
          dir,
          options.limit,
          options.cursor ? options.cursor.score : '',
          options.cursor ? options.cursor.id : '',
          options.from ?? '-inf',
          options.to ?? '+inf',
          channelCheck,
          receiptCheck,
        ),
      ),
    )) as unknown[][];
    return mergePages(replies, dir, options.limit);
  }

  private async transition(name: TransitionName, id: string, now: number, ...args: (string | number)[]): Promise<Transition> {
    const reply = (await this.call(name, id, now, ...args)) as Reply;
    if (reply[0] === 'ok') return { ok: true, record: toRecord(parseStored(reply[1] as string)) };
    return { ok: false, reason: reply[0] as Refusal, detail: reply[1] as string | undefined };
  }

  /** A worker's transition: the record and its tenant, or null when the message had already left `sending`. */
  private async workerTransition(name: TransitionName, id: string, now: number, ...args: (string | number)[]) {
    const reply = (await this.call(name, id, now, ...args)) as Reply;
    if (reply[0] !== 'ok') return null;
    const fields = parseStored(reply[1] as string);
    return { tenant: fields.tenant!, record: toRecord(fields) };
  }

  private call(name: TransitionName, id: string, now: number, ...args: (string | number)[]) {
    return this.redis[name](this.keys.record(id), this.keys.tagOf(id), now, ...this.common, ...args);
  }
}

/**
 * Random numbers in [0, 1) for ULIDs, drawn from a buffer refilled by the OS 1,024 at a time:
 * ulid's default asks the OS once per character (16 calls per id).
 */
function pooledRandom(): () => number {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]! / 0x1_0000_0000;
  };
}

interface Entry {
  id: string;
  score: number;
  json: string;
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
    for (const item of reply.slice(3) as [string, string, string][]) {
      entries.push({ id: item[0], score: Number(item[1]), json: item[2] });
    }
  }
  const candidates = entries
    .filter((e) => !bound || compare(e, bound) <= 0)
    .sort(compare);
  const page = candidates.slice(0, limit);
  let next: Boundary | null = bound;
  if (candidates.length > limit) next = page[page.length - 1]!;
  return {
    messages: page.map((e) => toRecord(parseStored(e.json))),
    nextCursor: next ? encodeCursor({ score: next.score, id: next.id }) : null,
  };
}
