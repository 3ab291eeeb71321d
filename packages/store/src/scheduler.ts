import type { MessageRecord } from '@punctual/shared';
import { DEFAULT_RETENTION_MS, MessageStore, type MessagePatch, type NewMessage, type Transition } from './message-store.js';
import { DeliveryQueues } from './delivery-queues.js';
import { CallbackQueues } from './callback-queues.js';
import type { Keyspace } from './keys.js';
import { isNoScript, loadAllScripts, type RedisClient } from './redis.js';
import { isWellFormedText, toRecord } from './record.js';
import { smsFieldsOf } from './sms-fields.js';

/** Reads of the stored text a move to SMS tries before giving up on counting it (concurrent PUTs). */
const SMS_UPDATE_READS = 3;
import { Suppressions } from './suppressions.js';

export interface SchedulerOptions {
  keyspace: Keyspace;
  /** Approximate length each partition's feed stream is trimmed to. */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms. */
  retentionMs?: number;
  /** MAX_SCHEDULED_PER_TENANT: scheduled messages a tenant may have at once. */
  maxScheduledPerTenant?: number;
}

/** `opted_out`: the recipient is suppressed on the channel; detail says by which list (`deployment` or `tenant`). */
export type ScheduleOutcome =
  | { ok: true; record: MessageRecord }
  | { ok: false; reason: 'exists' | 'quota' | 'opted_out'; detail?: string };

/**
 * The one owner of a message's life: the records (MessageStore), the delivery and callback queues
 * and the tenant quota. Routes and the worker call it and map its refusals to errors.
 *
 * The quota is the size of the tenant's scheduled lists, so it never drifts: the scripts that add
 * to a list (schedule, retry of a failure) refuse past the cap, atomically. With several
 * partitions a message's script sees only its own partition, so the lists of all partitions are
 * summed first: exact for one request at a time, while concurrent requests of one tenant can
 * pass the cap by at most their number.
 */
export class Scheduler {
  readonly store: MessageStore;
  readonly deliveries: DeliveryQueues;
  readonly callbacks: CallbackQueues;
  /** The suppression lists (opt-outs): they cancel scheduled messages and refuse new ones. */
  readonly suppressions: Suppressions;
  private readonly cap: number;
  private readonly partitions: number;

  private constructor(
    private readonly redis: RedisClient,
    options: SchedulerOptions,
  ) {
    this.store = new MessageStore(redis, options);
    this.deliveries = new DeliveryQueues(options.keyspace, redis);
    this.callbacks = new CallbackQueues(options.keyspace, redis, options.retentionMs ?? DEFAULT_RETENTION_MS);
    this.suppressions = new Suppressions(redis, { ...options, retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS, deliveries: this.deliveries });
    this.cap = options.maxScheduledPerTenant ?? Number.MAX_SAFE_INTEGER;
    this.partitions = options.keyspace.partitions;
  }

  /** A scheduler on a connection, once its queues' scripts are loaded there. */
  static async create(redis: RedisClient, options: SchedulerOptions): Promise<Scheduler> {
    const scheduler = new Scheduler(redis, options);
    try {
      await Promise.all([scheduler.deliveries.ready(), scheduler.callbacks.ready()]);
    } catch (err) {
      await scheduler.close();
      throw err;
    }
    return scheduler;
  }

  get keys(): Keyspace {
    return this.store.keys;
  }

  /**
   * A new message: its record and its delayed job in one MULTI, so both are stored or neither
   * (a 5xx means nothing was stored). `id`: one reserved earlier (an idempotent request taken
   * over); a record with that id already there is refused as `exists`, its job left alone.
   */
  async schedule(tenant: string, input: NewMessage, now: number, { id }: { id?: string } = {}): Promise<ScheduleOutcome> {
    assertWellFormed(input);
    if (await this.atCapElsewhere(tenant)) return { ok: false, reason: 'quota' };
    const messageId = id ?? this.store.newMessageId(now);
    const fields = this.store.newFields(tenant, messageId, input, now);
    const write = async () => {
      const tx = await this.deliveries.transaction();
      this.store.scheduleIn(tx, fields, this.cap, now);
      this.deliveries.enqueueIn(tx, messageId, input.sendAt);
      return (await tx.exec().catch(unwrapExecAbort)) ?? [];
    };
    let replies = await write();
    if (replies.some(([err]) => isNoScript(err))) {
      // Redis lost its script cache (restart, SCRIPT FLUSH, a first EVAL refused for memory):
      // inside a MULTI the client cannot resend the script itself, so load them and finish
      await loadAllScripts(this.redis);
      const recordWritten = replies[0]?.[0] === null && MessageStore.scheduleOutcome(replies[0][1]) === 'ok';
      if (recordWritten) await this.deliveries.enqueue(messageId, input.sendAt);
      else replies = await write();
    }
    const [scriptError, reply] = replies[0] ?? [new Error('schedule: no reply')];
    if (scriptError) {
      // refused before its first write (OOM, or an error it checks first): so was the job's script
      await this.deliveries.discard(messageId).catch(() => {});
      throw scriptError;
    }
    const outcome = MessageStore.scheduleOutcome(reply);
    if (outcome === 'exists') return { ok: false, reason: 'exists' };
    if (outcome === 'quota' || outcome === 'opted_out') {
      await this.deliveries.discard(messageId);
      return { ok: false, reason: outcome, detail: MessageStore.scheduleDetail(reply) };
    }
    return { ok: true, record: toRecord(fields) };
  }

  /** Changes a scheduled message; a new sendAt moves its job. */
  async update(tenant: string, id: string, patch: MessagePatch, now: number, ifVersion?: number): Promise<Transition> {
    assertWellFormed(patch);
    const result = await this.updateWithSmsFields(tenant, id, patch, now, ifVersion);
    if (result.ok && patch.sendAt !== undefined && patch.sendAt !== null) {
      // The record is already changed: a job left at the old time re-delays itself when it
      // fires, and the reconciler promotes one that stays late, so this is best effort.
      await this.deliveries.reschedule(id, result.record.sendAt, now);
    }
    return result;
  }

  /**
   * The update with the SMS fields of the text the record ends up with (the script drops them when
   * it is not an SMS). A move to SMS that keeps the stored text counts that text, so it is read
   * first and the update guarded by the version read: a PUT racing in between makes it read again.
   */
  private async updateWithSmsFields(tenant: string, id: string, patch: MessagePatch, now: number, ifVersion?: number): Promise<Transition> {
    if (typeof patch.message === 'string') return this.store.update(tenant, id, { ...patch, ...smsFieldsOf('sms', patch.message) }, now, ifVersion);
    if (patch.message === null) return this.store.update(tenant, id, { ...patch, encoding: null, segments: null }, now, ifVersion);
    if (patch.channel !== 'sms') return this.store.update(tenant, id, patch, now, ifVersion);
    for (let read = 0; read < SMS_UPDATE_READS; read++) {
      const stored = await this.store.fields(id);
      if (!stored || stored.tenant !== tenant) break;
      const guard = ifVersion ?? Number(stored.version);
      const result = await this.store.update(tenant, id, { ...patch, ...smsFieldsOf('sms', stored.message) }, now, guard);
      if (result.ok || result.reason !== 'version_mismatch' || ifVersion !== undefined) return result;
    }
    // not found, or raced every time: the record then counts no segments (the worker counts its text)
    return this.store.update(tenant, id, { ...patch, encoding: null, segments: null }, now, ifVersion);
  }

  /** scheduled → canceled; the claim refuses a canceled message, so its job can only do nothing. */
  async cancel(tenant: string, id: string, now: number): Promise<Transition> {
    const result = await this.store.cancel(tenant, id, now);
    if (result.ok) await this.deliveries.discard(id);
    return result;
  }

  /** failed → scheduled now. Stored as due: should the enqueue fail, the reconciler enqueues it. */
  async retry(tenant: string, id: string, now: number): Promise<Transition> {
    if (await this.atCapElsewhere(tenant)) return { ok: false, reason: 'quota' };
    const result = await this.store.rescheduleFailed(tenant, id, now, this.cap);
    if (result.ok) await this.deliveries.enqueue(id, now).catch(() => {});
    return result;
  }

  claim(id: string, now: number) {
    return this.store.claim(id, now);
  }

  /** sending → delivered, and its callback queued; null when the message had already left `sending`. */
  async deliver(id: string, now: number, providerMessageId: string, latenessMs: number) {
    const done = await this.store.markDelivered(id, now, providerMessageId, latenessMs);
    if (done) await this.callbacks.notify('messageDelivered', done.tenant, done.record);
    return done?.record ?? null;
  }

  /** sending → failed, and its callback queued; null when the message had already left `sending`. */
  async fail(id: string, now: number, lastError: string) {
    const done = await this.store.markFailed(id, now, lastError);
    if (done) await this.callbacks.notify('messageFailed', done.tenant, done.record);
    return done?.record ?? null;
  }

  /** A transient failure: stays sending, tried again at `nextAttemptAt`. */
  async retryLater(id: string, now: number, lastError: string, nextAttemptAt: number) {
    return (await this.store.markRetrying(id, now, lastError, nextAttemptAt))?.record ?? null;
  }

  /** Gives an unused claim back (provider rate limit): the attempt it counted is returned. */
  async release(id: string, now: number, lastError: string) {
    return (await this.store.releaseClaim(id, now, lastError))?.record ?? null;
  }

  /**
   * Queues (again) the callback of a message already delivered or failed: a delivery job re-run
   * after its worker died may have died before queueing it. The job id makes a repeat a no-op.
   */
  async notifyFinal(id: string): Promise<void> {
    const fields = await this.store.fields(id);
    if (!fields?.callbackUrl || (fields.status !== 'delivered' && fields.status !== 'failed')) return;
    await this.callbacks.notify(fields.status === 'delivered' ? 'messageDelivered' : 'messageFailed', fields.tenant!, toRecord(fields));
  }

  /** With several partitions: whether the tenant's scheduled messages, summed over them, reach the cap. */
  private async atCapElsewhere(tenant: string): Promise<boolean> {
    if (this.partitions === 1 || this.cap === Number.MAX_SAFE_INTEGER) return false;
    return (await this.store.scheduledCount(tenant)) >= this.cap;
  }

  async close(): Promise<void> {
    await Promise.all([this.deliveries.close(), this.callbacks.close()]);
  }
}

/** The API refuses such text with a 400 first; this keeps it from ever reaching a script. */
function assertWellFormed(input: object): void {
  if (!isWellFormedText(input)) throw new TypeError('text with a lone UTF-16 surrogate cannot be stored');
}

/**
 * A MULTI Redis refused while queueing (OOM, READONLY…) fails as EXECABORT: rethrow the reason
 * Redis gave for the first refused command, so callers see what happened.
 */
function unwrapExecAbort(err: unknown): never {
  const previous = (err as { previousErrors?: unknown[] }).previousErrors;
  throw previous?.[0] ?? err;
}
