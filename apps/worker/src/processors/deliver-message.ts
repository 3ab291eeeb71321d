import { DelayedError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Channel, DeliveryJobData } from '@punctual/shared';
import { toRecord, type MessageStore, type StoredFields } from '@punctual/store';
import type { ChannelRegistry } from '../channels/registry.js';
import { ProviderError, type OutboundMessage } from '../channels/provider.js';
import type { CallbackQueues } from '../callbacks/callback-queues.js';
import { privateValuesOf, redactText } from '../log-redaction.js';

export interface DeliverDeps {
  store: MessageStore;
  channels: ChannelRegistry;
  log: Logger;
  /** DELIVERY_ATTEMPTS: attempts before a transiently failing message is failed. */
  maxAttempts: number;
  /** Delay before the next attempt, given the number of attempts made so far. */
  backoff: (attempts: number) => number;
  /** Pauses the message's delivery queue, on every worker of the fleet (BullMQ manual rate limit). */
  rateLimit: (id: string, ms: number) => Promise<void>;
  callbacks: CallbackQueues;
  observe?: DeliveryObserver;
}

export type AttemptOutcome = 'delivered' | 'failed' | 'retried';

/** Told how each attempt ended (the worker's metrics). */
export interface DeliveryObserver {
  attempt(channel: Channel, outcome: AttemptOutcome): void;
}

/** Pause of the queue after a provider 429 that names no Retry-After, and the range honoured. */
export const RATE_LIMIT_PAUSE_MS = 1000;
const MIN_RATE_LIMIT_PAUSE_MS = 100;
const MAX_RATE_LIMIT_PAUSE_MS = 30_000;

/** The API enqueues the job just before it writes the record: give the record time to land. */
const RECORD_GRACE_MS = 5000;

/**
 * Processes one delivery job. The record decides: a job that fires early (its message was moved
 * later) re-delays itself, one whose message is no longer scheduled or sending does nothing, and
 * only a successful atomic claim leads to a provider call.
 */
export async function deliverMessage(job: Job<DeliveryJobData>, token: string | undefined, deps: DeliverDeps) {
  const { id } = job.data;
  const now = Date.now();
  const claim = await deps.store.claim(id, now);
  if (claim.outcome === 'missing') {
    if (now - job.timestamp < RECORD_GRACE_MS) return redelay(job, token, now + 50);
    deps.log.warn({ messageId: id }, 'delivery job without a message record: dropped');
    return;
  }
  if (claim.outcome === 'final') return queueMissedCallback(id, claim.status, deps);
  if (claim.outcome === 'early') return redelay(job, token, claim.sendAt);

  const { record, fields } = claim;
  const log = deps.log.child({ messageId: id, tenant: fields.tenant, channel: record.channel, attempt: record.attempts });
  const provider = deps.channels.get(record.channel);
  const startedAt = Date.now();
  let providerMessageId: string;
  try {
    if (!provider) throw new ProviderError(`NO_PROVIDER: no provider for channel ${record.channel}`, { transient: false });
    ({ providerMessageId } = await provider.send(outbound(fields)));
  } catch (err) {
    const failure = err instanceof ProviderError ? err : new ProviderError(`NETWORK: ${errorText(err)}`, { transient: true });
    return handleRefusal(failure, job, token, record.attempts, record.channel, deps, log, fields);
  }
  // A Redis error from here fails the job; the reconciler enqueues the `sending` message again
  // after its grace period and the message is sent again (at least once to the provider).
  // a message scheduled in the past is due from the moment it was created
  const lateness = startedAt - Math.max(record.sendAt, Number(fields.createdAt));
  const delivered = await deps.store.markDelivered(id, Date.now(), providerMessageId, lateness);
  log.info({ latenessMs: lateness, providerMs: Date.now() - startedAt }, 'delivered');
  deps.observe?.attempt(record.channel, 'delivered');
  if (delivered) await deps.callbacks.notify('messageDelivered', delivered, fields.tenant!);
}

/**
 * A 429 gives the attempt back and pauses the queue; a permanent error, or a transient one on the
 * last attempt, fails the message; any other transient error retries after a backoff.
 */
async function handleRefusal(failure: ProviderError, job: Job<DeliveryJobData>, token: string | undefined, attempts: number, channel: Channel, deps: DeliverDeps, log: Logger, fields: StoredFields) {
  const { id } = job.data;
  const error = redactText(failure.message, privateValuesOf(fields));
  if (failure.rateLimited) {
    const pauseMs = Math.min(MAX_RATE_LIMIT_PAUSE_MS, Math.max(MIN_RATE_LIMIT_PAUSE_MS, failure.retryAfterMs ?? RATE_LIMIT_PAUSE_MS));
    await deps.store.releaseClaim(id, Date.now(), failure.message);
    await deps.rateLimit(id, pauseMs);
    log.warn({ error, pauseMs }, 'provider rate limit: queue paused, attempt not counted');
    throw Worker.RateLimitError();
  }
  if (!failure.transient || attempts >= deps.maxAttempts) {
    const failed = await deps.store.markFailed(id, Date.now(), failure.message);
    log.warn({ error }, 'delivery failed');
    deps.observe?.attempt(channel, 'failed');
    if (failed) await deps.callbacks.notify('messageFailed', failed, fields.tenant!);
    return;
  }
  const nextAt = Date.now() + Math.max(deps.backoff(attempts), failure.retryAfterMs ?? 0);
  await deps.store.markRetrying(id, Date.now(), failure.message, nextAt);
  log.info({ error, nextAttemptAt: new Date(nextAt).toISOString() }, 'delivery will be retried');
  deps.observe?.attempt(channel, 'retried');
  return redelay(job, token, nextAt);
}

/**
 * A job that runs after its message reached delivered or failed belonged to a worker that died
 * before finishing it, maybe before queueing the callback: queue it (again). The callback job id
 * makes this a no-op when it was queued already.
 */
async function queueMissedCallback(id: string, status: string, deps: DeliverDeps): Promise<void> {
  if (status !== 'delivered' && status !== 'failed') return;
  const fields = await deps.store.fields(id);
  if (fields?.callbackUrl === undefined || fields.status !== status) return;
  await deps.callbacks.notify(status === 'delivered' ? 'messageDelivered' : 'messageFailed', toRecord(fields), fields.tenant!);
}

async function redelay(job: Job, token: string | undefined, timestamp: number): Promise<never> {
  await job.moveToDelayed(timestamp, token);
  throw new DelayedError();
}

function outbound(fields: StoredFields): OutboundMessage {
  const message: OutboundMessage = {
    id: fields.id!,
    channel: fields.channel as OutboundMessage['channel'],
    recipient: fields.recipient!,
  };
  if (fields.message !== undefined) message.message = fields.message;
  if (fields.template !== undefined) message.template = JSON.parse(fields.template);
  return message;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Exponential backoff with full jitter: a random delay up to base·2^(n-1), capped. */
export function fullJitterBackoff(baseMs: number, capMs: number): (attempts: number) => number {
  return (attempts) => Math.floor(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempts - 1)));
}
