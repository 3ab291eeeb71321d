import {
  inboundKeyword,
  recipientDigits,
  type Channel,
  type InboundKeyword,
  type Suppression,
  type SuppressionSource,
} from '@punctual/shared';
import type { DeliveryQueues } from './delivery-queues.js';
import type { Keyspace } from './keys.js';
import { defineScripts, type RedisClient } from './redis.js';
import { applySuppression, reassertSuppression, recordSuppression } from './lua/suppressions.js';
import { transitionArgs } from './lua/prelude.js';

/** Who is suppressed: a recipient on a channel, on one tenant's list or (no tenant) the deployment's. */
export interface SuppressionTarget {
  channel: Channel;
  /** Any spelling: `+5511…`, `5511…`. */
  recipient: string;
  /** Omitted: the deployment's list, for every tenant (the recipient opted out). */
  tenant?: string;
}

export interface OptOutResult {
  /** False when it was suppressed already (the first entry is kept). */
  created: boolean;
  suppression: Suppression;
  /** Scheduled messages this call canceled. */
  canceled: number;
}

export interface SuppressionListOptions {
  limit: number;
  /** The creation time (epoch ms) of the last entry of the previous page: `decodeSuppressionCursor`. */
  cursor?: number;
}

export interface SuppressionsOptions {
  keyspace: Keyspace;
  /** Approximate length each partition's feed stream is trimmed to. */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms: how long the canceled records are kept. */
  retentionMs: number;
  /** The jobs of canceled messages are removed (best effort: the claim refuses them anyway). */
  deliveries: DeliveryQueues;
}

/** Messages an opt-out cancels per script call (30–60 µs each): one call holds Redis ~2 ms, however many there are. */
const CANCEL_PAGE = 50;
/** A journaled change older than this is taken to be abandoned (its process died) and is repaired. */
export const SUPPRESSION_REPAIR_GRACE_MS = 30_000;

type Commands = {
  recordSuppression(key: string, ...args: (string | number)[]): Promise<[number, string, string, number?, string?]>;
  reassertSuppression(key: string, ...args: (string | number)[]): Promise<[] | [number, string, number]>;
  applySuppression(key: string, ...args: (string | number)[]): Promise<[number, string, string, ...string[]]>;
};

/**
 * The suppression lists: the deployment's (recipients who opted out of a channel: a keyword reply
 * or a provider refusal; senders are shared by tenants, so it holds for all of them) and each
 * tenant's own. See lua/suppressions.ts for the layout: a canonical copy in the global slot, a
 * replica in every partition that the schedule, update, retry and claim scripts check, kept in
 * step by one script per partition that also cancels the partition's still-scheduled messages to
 * the recipient. A change is journaled until every partition has it; `repair` finishes changes
 * whose process died half way.
 */
export class Suppressions {
  private readonly redis: RedisClient & Commands;
  private readonly keys: Keyspace;
  private readonly common: (string | number)[];
  private readonly deliveries: DeliveryQueues;

  constructor(redis: RedisClient, { keyspace, eventsMaxLen, retentionMs, deliveries }: SuppressionsOptions) {
    defineScripts(redis, { recordSuppression, reassertSuppression, applySuppression });
    this.redis = redis as RedisClient & Commands;
    this.keys = keyspace;
    this.common = transitionArgs(eventsMaxLen, retentionMs);
    this.deliveries = deliveries;
  }

  /**
   * Suppresses the recipient: from the moment each partition's script ran, no message to it can
   * be scheduled, updated to it, retried or claimed there; its still-scheduled ones are canceled
   * (`cancelReason: "opted_out"`). Resolves once every partition has it.
   */
  async optOut(target: SuppressionTarget, source: SuppressionSource, now: number): Promise<OptOutResult> {
    const { channel, digits, scope } = this.parse(target);
    const [changed, createdAt, was, seq, op] = await this.redis.recordSuppression(
      this.keys.suppressionSeq(), this.keys.global(), scope, channel, digits, '1', now, source,
    );
    const canceled = await this.propagate(scope, channel, digits, seq!, true, now);
    await this.redis.zrem(this.keys.suppressionJournal(), op!);
    const suppression: Suppression = {
      channel,
      recipient: digits,
      scope: target.tenant === undefined ? 'deployment' : 'tenant',
      source: was as SuppressionSource,
      createdAt: iso(createdAt),
    };
    return { created: changed === 1, suppression, canceled };
  }

  /** Lifts a suppression; messages it canceled stay canceled. False when there was none. */
  async optIn(target: SuppressionTarget, now: number): Promise<boolean> {
    const { channel, digits, scope } = this.parse(target);
    const [changed, , , seq, op] = await this.redis.recordSuppression(
      this.keys.suppressionSeq(), this.keys.global(), scope, channel, digits, '0', now, '',
    );
    if (changed !== 1) return false;
    await this.propagate(scope, channel, digits, seq!, false, now);
    await this.redis.zrem(this.keys.suppressionJournal(), op!);
    return true;
  }

  /**
   * What keeps a tenant from messaging the recipient: its own entry, else the deployment's (the
   * recipient opted out; the tenant would learn it from a 422 anyway). Null when neither.
   */
  async get(tenant: string, channel: Channel, recipient: string): Promise<Suppression | null> {
    const digits = this.digits(recipient);
    const member = `${channel}:${digits}`;
    const [own, all] = await Promise.all([
      this.redis.zscore(this.keys.tenantSuppressions(tenant), member),
      this.redis.hget(this.keys.deploymentSuppressions(), member),
    ]);
    if (own !== null) return { channel, recipient: digits, scope: 'tenant', source: 'api', createdAt: iso(own) };
    if (all === null) return null;
    const entry = JSON.parse(all) as { source: SuppressionSource; createdAt: string };
    return { channel, recipient: digits, scope: 'deployment', source: entry.source, createdAt: iso(entry.createdAt) };
  }

  /**
   * A page of a tenant's own list, newest first: entries have distinct creation times, so the
   * last one's is the cursor. The deployment's list is never listed: it names other tenants' recipients.
   */
  async list(tenant: string, { limit, cursor }: SuppressionListOptions): Promise<{ suppressions: Suppression[]; nextCursor: string | null }> {
    const from = cursor === undefined ? '+inf' : `(${cursor}`;
    const flat = await this.redis.zrevrangebyscore(this.keys.tenantSuppressions(tenant), from, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1);
    const suppressions: Suppression[] = [];
    for (let i = 0; i < flat.length && suppressions.length < limit; i += 2) {
      const [channel, digits] = flat[i]!.split(':') as [Channel, string];
      suppressions.push({ channel, recipient: digits, scope: 'tenant', source: 'api', createdAt: iso(flat[i + 1]!) });
    }
    const more = flat.length > 2 * limit;
    return { suppressions, nextCursor: more ? encodeSuppressionCursor(Number(flat[2 * limit - 1])) : null };
  }

  /**
   * Finishes, from the canonical lists, every change journaled before `now - graceMs` (its
   * process died between partitions). Idempotent; several workers may run it at once. Returns
   * how many it finished.
   */
  async repair(now: number, graceMs = SUPPRESSION_REPAIR_GRACE_MS, limit = 100): Promise<number> {
    const journal = this.keys.suppressionJournal();
    const stale = await this.redis.zrangebyscore(journal, '-inf', now - graceMs, 'LIMIT', 0, limit);
    let repaired = 0;
    for (const old of stale) {
      const reply = await this.redis.reassertSuppression(journal, this.keys.global(), old, now);
      if (reply.length === 0) continue;
      const [seq, op, on] = reply;
      const [, scope, member] = op.split('|') as [string, string, string];
      const [channel, digits] = member.split(':') as [Channel, string];
      await this.propagate(scope, channel, digits, seq, on === 1, now);
      await this.redis.zrem(journal, op);
      repaired++;
    }
    return repaired;
  }

  /** Opt-outs recorded so far, fleet-wide: `<channel>:<source>` → count. */
  async optOutCounts(): Promise<Map<string, number>> {
    const hash = await this.redis.hgetall(this.keys.optOutCounts());
    return new Map(Object.entries(hash).map(([field, value]) => [field, Number(value)]));
  }

  /** Applies a change to every partition (in parallel); returns the messages it canceled. */
  private async propagate(scope: string, channel: Channel, digits: string, seq: number, on: boolean, now: number): Promise<number> {
    const tenant = scope === '*' ? undefined : scope;
    const canceled = await Promise.all(this.keys.allTags().map((tag) => this.applyTo(tag, tenant, channel, digits, seq, on, now)));
    return canceled.reduce((sum, n) => sum + n, 0);
  }

  private async applyTo(tag: string, tenant: string | undefined, channel: Channel, digits: string, seq: number, on: boolean, now: number): Promise<number> {
    let canceled = 0;
    let bound: [string, string] = ['', ''];
    for (;;) {
      const [more, score, id, ...ids] = await this.redis.applySuppression(
        this.keys.suppressionReplica(tag, tenant), tag, now, ...this.common,
        tenant ?? '', channel, digits, seq, on ? '1' : '0', CANCEL_PAGE, ...bound,
      );
      canceled += ids.length;
      await Promise.all(ids.map((messageId) => this.deliveries.discard(messageId)));
      if (more !== 1) return canceled;
      bound = [score, id];
    }
  }

  private parse(target: SuppressionTarget) {
    return { channel: target.channel, digits: this.digits(target.recipient), scope: target.tenant ?? '*' };
  }

  private digits(recipient: string): string {
    const digits = recipientDigits(recipient);
    if (digits === null) throw new TypeError('not an E.164 number');
    return digits;
  }
}

/** What an inbound message (a reply to one of our senders) did: the keyword it was, and whether it changed the list. */
export interface InboundOutcome {
  keyword: InboundKeyword | null;
  changed: boolean;
}

/**
 * An inbound message from a recipient: an opt-out keyword (STOP…) suppresses it on that channel
 * for every tenant, an opt-in keyword (START…) lifts that; any other text, or a sender that is no
 * E.164 number, does nothing. `from` in any spelling: `+5511…`, `5511…` (Meta), `whatsapp:+5511…`
 * (Twilio). The webhooks call this for every inbound message.
 */
export async function applyInboundKeyword(
  suppressions: Suppressions,
  inbound: { channel: Channel; from: string; text: string },
  now = Date.now(),
): Promise<InboundOutcome> {
  const keyword = inboundKeyword(inbound.text);
  const recipient = recipientDigits(inbound.from);
  if (keyword === null || recipient === null) return { keyword: null, changed: false };
  const target = { channel: inbound.channel, recipient };
  if (keyword === 'opt_out') return { keyword, changed: (await suppressions.optOut(target, 'inbound', now)).created };
  return { keyword, changed: await suppressions.optIn(target, now) };
}

export function encodeSuppressionCursor(createdAt: number): string {
  return Buffer.from(`s:${createdAt}`).toString('base64url');
}

/** The creation time a cursor of `list` names; null for anything that is not one. */
export function decodeSuppressionCursor(cursor: string): number | null {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(cursor)) return null;
  const match = /^s:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) return null;
  const createdAt = Number(match[1]);
  return Number.isSafeInteger(createdAt) ? createdAt : null;
}

function iso(ms: string): string {
  return new Date(Number(ms)).toISOString();
}
