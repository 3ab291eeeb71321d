import type { ChainableCommander } from 'ioredis';
import type { MessageRecord } from '@punctual/shared';
import { DEFAULT_RETENTION_MS, MessageStore, type MessagePatch, type NewMessage, type StoredPatch, type Transition } from './message-store.js';
import { BatchStore, batchMessageId, type BatchRefusal } from './batches.js';
import { ReceiptStore, deliveredRecord, type ProviderReceipt, type ReceiptOutcome } from './receipt-store.js';
import { DeliveryQueues } from './delivery-queues.js';
import { CallbackQueues } from './callback-queues.js';
import type { Keyspace } from './keys.js';
import { connectRedis, defineScripts, isNoScript, loadAllScripts, type RedisClient } from './redis.js';
import { defineJobCreation, jobTransaction } from './bullmq-internals.js';
import { scheduleMessage } from './lua/transitions.js';
import { scheduleBatch } from './lua/batches.js';
import { isWellFormedText, toRecord, type StoredFields } from './record.js';
import { smsFieldsOf } from './sms-fields.js';
import { Suppressions } from './suppressions.js';

/** Reads of the stored text a move to SMS tries before giving up on counting it (concurrent PUTs). */
const SMS_UPDATE_READS = 3;

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

/** An item of a batch: its index in the request (its id follows from it) and the message. */
export interface BatchItem {
  index: number;
  message: NewMessage;
}

export type BatchItemOutcome = { ok: true; record: MessageRecord } | { ok: false; reason: BatchRefusal };

interface PartitionItem {
  /** Position in the items given to scheduleBatch. */
  at: number;
  fields: StoredFields;
  sendAt: number;
}

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
  readonly batches: BatchStore;
  readonly deliveries: DeliveryQueues;
  readonly callbacks: CallbackQueues;
  /** The suppression lists (opt-outs): they cancel scheduled messages and refuse new ones. */
  readonly suppressions: Suppressions;
  readonly receipts: ReceiptStore;
  private readonly cap: number;
  private readonly partitions: number;

  private constructor(
    private readonly redis: RedisClient,
    /**
     * Where the writes that create jobs run (schedule, batches): a connection of its own with only
     * those scripts defined, as ioredis copies every script a connection has onto each MULTI, and
     * BullMQ defines some fifty on the ones its queues use.
     */
    private readonly writes: RedisClient,
    options: SchedulerOptions,
  ) {
    const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.store = new MessageStore(redis, { ...options, retentionMs });
    this.batches = new BatchStore(redis, { ...options, retentionMs });
    this.deliveries = new DeliveryQueues(options.keyspace, redis);
    this.callbacks = new CallbackQueues(options.keyspace, redis, retentionMs);
    this.suppressions = new Suppressions(redis, { ...options, retentionMs, deliveries: this.deliveries });
    this.receipts = new ReceiptStore(redis, options.keyspace, { eventsMaxLen: options.eventsMaxLen, retentionMs });
    this.cap = options.maxScheduledPerTenant ?? Number.MAX_SAFE_INTEGER;
    this.partitions = options.keyspace.partitions;
  }

  /** A scheduler on a connection (and one more of the same kind it opens), once its queues' scripts are loaded. */
  static async create(redis: RedisClient, options: SchedulerOptions): Promise<Scheduler> {
    const writes = redis.duplicate();
    writes.on('error', () => {}); // its commands fail with the error; the main connection logs it
    const scheduler = new Scheduler(redis, writes, options);
    try {
      await Promise.all([scheduler.deliveries.ready(), scheduler.callbacks.ready(), connectRedis(writes)]);
      defineScripts(writes, { scheduleMessage, scheduleBatch });
      defineJobCreation(redis, writes);
    } catch (err) {
      await scheduler.close();
      throw err;
    }
    return scheduler;
  }

  get keys(): Keyspace {
    return this.store.keys;
  }

  /** MAX_SCHEDULED_PER_TENANT, as given (no cap: Number.MAX_SAFE_INTEGER). */
  get maxScheduledPerTenant(): number { return this.cap; }

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
    const replies = await this.writeWithJobs((tx) => this.store.scheduleIn(tx, fields, this.cap, now), [{ id: messageId, sendAt: input.sendAt }]);
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

  /**
   * The messages of a batch, each checked as `schedule` checks one, independently: per partition,
   * one MULTI holds one script call for all its records and their delayed jobs (as BullMQ's
   * addBulk writes jobs), and the partitions' MULTIs go out together. The cap counts the items in
   * order. The batch's counts start in the same scripts, in every partition it has messages in
   * and in the batch id's own, so a batch whose items were all refused still exists. A partition
   * whose write fails refuses its items as `unavailable`; when every partition fails, nothing was
   * stored and the error is thrown. Outcomes come in the order of `items`.
   */
  async scheduleBatch(tenant: string, batchId: string, items: readonly BatchItem[], now: number): Promise<BatchItemOutcome[]> {
    for (const item of items) assertWellFormed(item.message);
    const outcomes = new Array<BatchItemOutcome>(items.length);
    let room = this.cap === Number.MAX_SAFE_INTEGER ? Infinity : Math.max(0, this.cap - (await this.store.scheduledCount(tenant)));
    const partitions = new Map<number, PartitionItem[]>([[this.keys.partitionOf(batchId), []]]);
    items.forEach(({ index, message }, at) => {
      if (room <= 0) {
        outcomes[at] = { ok: false, reason: 'quota' };
        return;
      }
      room--;
      const id = batchMessageId(batchId, index);
      const partition = this.keys.partitionOf(id);
      if (!partitions.has(partition)) partitions.set(partition, []);
      partitions.get(partition)!.push({ at, fields: this.store.newFields(tenant, id, message, now, batchId), sendAt: message.sendAt });
    });
    const written = await Promise.allSettled(
      [...partitions].map(([partition, group]) => this.schedulePartition(tenant, batchId, this.keys.tag(partition), group, now)),
    );
    const failure = written.find((w) => w.status === 'rejected');
    if (failure && written.every((w) => w.status === 'rejected')) throw failure.reason;
    await Promise.all(
      [...partitions.values()].map(async (group, p) => {
        const result = written[p]!;
        for (const [i, item] of group.entries()) {
          outcomes[item.at] = result.status === 'rejected' ? { ok: false, reason: 'unavailable' } : await this.itemOutcome(tenant, batchId, item.fields, result.value[i]!);
        }
      }),
    );
    return outcomes;
  }

  /** One partition's part of a batch: records and jobs in one MULTI; the jobs of refused items removed after. */
  private async schedulePartition(tenant: string, batchId: string, tag: string, group: PartitionItem[], now: number) {
    const discardAll = () => Promise.all(group.map((item) => this.deliveries.discard(item.fields.id!))).catch(() => {});
    let replies: [Error | null, unknown][];
    try {
      replies = await this.writeWithJobs(
        (tx) => this.batches.scheduleIn(tx, tag, tenant, batchId, group.map((item) => item.fields), this.cap, now),
        group.map((item) => ({ id: item.fields.id!, sendAt: item.sendAt })),
      );
    } catch (err) {
      await discardAll();
      throw err;
    }
    const [scriptError, reply] = replies[0] ?? [new Error('scheduleBatch: no reply')];
    if (scriptError) {
      // refused before its first write (OOM, or an error it checks first): so were the jobs' scripts
      await discardAll();
      throw scriptError;
    }
    const results = BatchStore.scheduleOutcomes(reply);
    await Promise.all(group.filter((_, i) => results[i] !== 'ok' && results[i] !== 'exists').map((item) => this.deliveries.discard(item.fields.id!)));
    return results;
  }

  /** An item the script found already created is this batch's when the record says so (the batch written again). */
  private async itemOutcome(tenant: string, batchId: string, fields: StoredFields, result: 'ok' | BatchRefusal): Promise<BatchItemOutcome> {
    if (result === 'ok') return { ok: true, record: toRecord(fields) };
    if (result === 'exists') {
      const existing = await this.store.fields(fields.id!);
      if (existing?.tenant === tenant && existing.batchId === batchId) return { ok: true, record: toRecord(existing) };
    }
    return { ok: false, reason: result };
  }

  /**
   * Cancels every still-scheduled message of a batch, partition by partition, each as `cancel`
   * does; null when the tenant has no such batch. The claim refuses a canceled message, so none
   * of them is sent once this returns.
   */
  async cancelBatch(tenant: string, batchId: string, now: number): Promise<number | null> {
    if (!(await this.batches.summary(tenant, batchId))) return null;
    const canceled = (await Promise.all(this.keys.allTags().map((tag) => this.batches.cancel(tag, tenant, batchId, now)))).flat();
    await Promise.all(canceled.map((id) => this.deliveries.discard(id)));
    return canceled.length;
  }

  /** Changes a scheduled message; a new sendAt moves its job. `unlessQuiet`: see MessageStore.update. */
  async update(tenant: string, id: string, patch: MessagePatch, now: number, ifVersion?: number, unlessQuiet = false): Promise<Transition> {
    assertWellFormed(patch);
    const result = await this.updateWithSmsFields(tenant, id, patch, now, ifVersion, unlessQuiet);
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
  private async updateWithSmsFields(tenant: string, id: string, patch: MessagePatch, now: number, ifVersion: number | undefined, unlessQuiet: boolean): Promise<Transition> {
    const update = (stored: StoredPatch, version = ifVersion) => this.store.update(tenant, id, stored, now, version, unlessQuiet);
    if (typeof patch.message === 'string') return update({ ...patch, ...smsFieldsOf('sms', patch.message) });
    if (patch.message === null) return update({ ...patch, encoding: null, segments: null });
    if (patch.channel !== 'sms') return update(patch);
    for (let read = 0; read < SMS_UPDATE_READS; read++) {
      const stored = await this.store.fields(id);
      if (!stored || stored.tenant !== tenant) break;
      const result = await update({ ...patch, ...smsFieldsOf('sms', stored.message) }, ifVersion ?? Number(stored.version ?? 1));
      if (result.ok || result.reason !== 'version_mismatch' || ifVersion !== undefined) return result;
    }
    // not found, or raced every time: the record then counts no segments (the worker counts its text)
    return update({ ...patch, encoding: null, segments: null });
  }

  /** scheduled → canceled; the claim refuses a canceled message, so its job can only do nothing. */
  async cancel(tenant: string, id: string, now: number, ifVersion?: number): Promise<Transition> {
    const result = await this.store.cancel(tenant, id, now, ifVersion);
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

  claim(id: string, now: number, worker?: string) {
    return this.store.claim(id, now, worker);
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

  /**
   * One MULTI: the records' script (`writeRecords`, first) and the delayed job of each message,
   * so both are stored or neither. Should Redis have lost its script cache (restart, SCRIPT FLUSH,
   * a first EVAL refused for memory), the client cannot resend a script inside a MULTI: the
   * scripts are loaded, then the write is done again, or only the jobs when the records went in.
   */
  private async writeWithJobs(writeRecords: (tx: ChainableCommander) => void, jobs: { id: string; sendAt: number }[]) {
    const write = async () => {
      const tx = jobTransaction(this.writes);
      writeRecords(tx);
      for (const job of jobs) this.deliveries.enqueueIn(tx, job.id, job.sendAt);
      return ((await tx.exec().catch(unwrapExecAbort)) ?? []) as [Error | null, unknown][];
    };
    const replies = await write();
    if (!replies.some(([err]) => isNoScript(err))) return replies;
    await loadAllScripts(this.writes);
    if (replies[0]?.[0] !== null) return write();
    await Promise.all(jobs.filter((_, i) => replies[i + 1]?.[0]).map((job) => this.deliveries.enqueue(job.id, job.sendAt)));
    return replies;
  }

  /** With several partitions: whether the tenant's scheduled messages, summed over them, reach the cap. */
  private async atCapElsewhere(tenant: string): Promise<boolean> {
    if (this.partitions === 1 || this.cap === Number.MAX_SAFE_INTEGER) return false;
    return (await this.store.scheduledCount(tenant)) >= this.cap;
  }

  /** Rejects unless the connection new messages are written through answers. */
  async ping(): Promise<void> {
    await this.writes.ping();
  }

  async close(): Promise<void> {
    await Promise.all([this.deliveries.close(), this.callbacks.close()]);
    await this.writes.quit().catch(() => this.writes.disconnect());
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
