import type { MessageRecord } from '@punctual/shared';
import { DEFAULT_RETENTION_MS, MessageStore, type MessagePatch, type NewMessage, type Transition } from './message-store.js';
import { ReceiptStore, deliveredRecord, type ProviderReceipt, type ReceiptOutcome } from './receipt-store.js';
import { DeliveryQueues } from './delivery-queues.js';
import { CallbackQueues } from './callback-queues.js';
import type { Keyspace } from './keys.js';
import type { RedisClient } from './redis.js';
import { isWellFormedText, toRecord } from './record.js';

export interface SchedulerOptions {
  keyspace: Keyspace;
  /** Approximate length each partition's feed stream is trimmed to. */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms. */
  retentionMs?: number;
  /** MAX_SCHEDULED_PER_TENANT: scheduled messages a tenant may have at once. */
  maxScheduledPerTenant?: number;
}

export type ScheduleOutcome = { ok: true; record: MessageRecord } | { ok: false; reason: 'exists' | 'quota' };

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
  readonly receipts: ReceiptStore;
  private readonly cap: number;
  private readonly partitions: number;

  private constructor(redis: RedisClient, options: SchedulerOptions) {
    this.store = new MessageStore(redis, options);
    this.deliveries = new DeliveryQueues(options.keyspace, redis);
    this.callbacks = new CallbackQueues(options.keyspace, redis);
    this.receipts = new ReceiptStore(redis, options.keyspace, { eventsMaxLen: options.eventsMaxLen, retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS });
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
    const tx = await this.deliveries.transaction();
    this.store.scheduleIn(tx, fields, this.cap, now);
    this.deliveries.enqueueIn(tx, messageId, input.sendAt);
    const replies = (await tx.exec()) ?? [];
    const [scriptError, reply] = replies[0] ?? [new Error('schedule: no reply')];
    if (scriptError) {
      // refused before its first write (OOM, or an error it checks first): so was the job's script
      await this.deliveries.discard(messageId).catch(() => {});
      throw scriptError;
    }
    const outcome = MessageStore.scheduleOutcome(reply);
    if (outcome === 'exists') return { ok: false, reason: 'exists' };
    if (outcome === 'quota') {
      await this.deliveries.discard(messageId);
      return { ok: false, reason: 'quota' };
    }
    return { ok: true, record: toRecord(fields) };
  }

  /** Changes a scheduled message; a new sendAt moves its job. */
  async update(tenant: string, id: string, patch: MessagePatch, now: number, ifVersion?: number): Promise<Transition> {
    assertWellFormed(patch);
    const result = await this.store.update(tenant, id, patch, now, ifVersion);
    if (result.ok && patch.sendAt !== undefined && patch.sendAt !== null) {
      // The record is already changed: a job left at the old time re-delays itself when it
      // fires, and the reconciler promotes one that stays late, so this is best effort.
      await this.deliveries.reschedule(id, result.record.sendAt, now);
    }
    return result;
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

  /**
   * sending → delivered, and its callback queued; null when the message had already left `sending`.
   * `lookupAt`: when to look its receipt up at the provider, if ever.
   */
  async deliver(id: string, now: number, providerMessageId: string, latenessMs: number, lookupAt?: number) {
    const done = await this.store.markDelivered(id, now, providerMessageId, latenessMs, lookupAt);
    if (done) await this.callbacks.notify('messageDelivered', done.tenant, done.record);
    if (done?.receipt) await this.notifyReceipt(done.tenant, done.receipt);
    return done?.record ?? null;
  }

  /** A provider's receipt, and its callback queued when it changed the record. */
  async recordReceipt(receipt: ProviderReceipt, now: number): Promise<ReceiptOutcome> {
    const result = await this.receipts.record(receipt, now);
    if (result.outcome === 'applied') await this.notifyReceipt(result.tenant, result.record);
    return result;
  }

  /**
   * Queues the receipt callbacks whose process died between storing the receipt and queueing its
   * callback (the receipt outbox), with the record as it is now. Returns how many it queued.
   */
  async requeueReceiptCallbacks(before: number, limit: number): Promise<number> {
    let queued = 0;
    for (const tag of this.keys.allTags()) {
      for (const { entry, id } of await this.receipts.unqueuedCallbacks(tag, before, limit)) {
        const fields = await this.store.fields(id);
        if (fields?.callbackUrl && fields.receiptStatus) {
          await this.callbacks.notify('messageReceipt', fields.tenant!, toRecord(fields));
          queued++;
        }
        await this.receipts.forgetCallback(tag, entry);
      }
    }
    return queued;
  }

  private async notifyReceipt(tenant: string, record: MessageRecord): Promise<void> {
    if (!record.callbackUrl) return;
    await this.callbacks.notify('messageReceipt', tenant, record);
    await this.receipts.callbackQueued(record);
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
    if (fields.status === 'delivered') await this.callbacks.notify('messageDelivered', fields.tenant!, deliveredRecord(fields));
    else await this.callbacks.notify('messageFailed', fields.tenant!, toRecord(fields));
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
