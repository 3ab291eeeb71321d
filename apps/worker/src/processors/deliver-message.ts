import { DelayedError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Channel, DeliveryJobData, MessageRecord } from '@punctual/shared';
import type { Scheduler } from '@punctual/store';
import type { ChannelRegistry } from '../channels/registry.js';
import { ProviderError, type OutboundMessage } from '../channels/provider.js';

export interface DeliverDeps {
  scheduler: Scheduler;
  channels: ChannelRegistry;
  log: Logger;
  /** DELIVERY_ATTEMPTS: attempts before a transiently failing message is failed. */
  maxAttempts: number;
  /** Delay before the next attempt, given the number of attempts made so far. */
  backoff: (attempts: number) => number;
  /** Pauses the message's delivery queue, on every worker of the fleet (BullMQ manual rate limit). */
  rateLimit: (id: string, ms: number) => Promise<void>;
  observe?: DeliveryObserver;
  /** RECEIPT_POLL_AFTER_MS: when a provider's message can be looked up, its receipt is, this long after acceptance. */
  receiptLookupAfterMs?: number;
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

/**
 * Processes one delivery job. The record decides: a job that fires early (its message was moved
 * later) re-delays itself, one whose message is no longer scheduled or sending does nothing, and
 * only a successful atomic claim leads to a provider call.
 */
export async function deliverMessage(job: Job<DeliveryJobData>, token: string | undefined, deps: DeliverDeps) {
  const { id } = job.data;
  const now = Date.now();
  const claim = await deps.scheduler.claim(id, now);
  if (claim.outcome === 'missing') {
    // record and job are written in one MULTI: this job outlived its record (retention)
    deps.log.warn({ messageId: id }, 'delivery job without a message record: dropped');
    return;
  }
  // a job re-run after its worker died, maybe before it queued the callback
  if (claim.outcome === 'final') return deps.scheduler.notifyFinal(id);
  if (claim.outcome === 'early') return redelay(job, token, claim.sendAt);

  const { record, tenant } = claim;
  const log = deps.log.child({ messageId: id, tenant, channel: record.channel, attempt: record.attempts });
  const provider = deps.channels.get(record.channel);
  const startedAt = Date.now();
  let providerMessageId: string;
  let receiptLookup: boolean | undefined;
  try {
    if (!provider) throw new ProviderError(`NO_PROVIDER: no provider for channel ${record.channel}`, { transient: false });
    ({ providerMessageId, receiptLookup } = await provider.send(outbound(record)));
  } catch (err) {
    const failure = err instanceof ProviderError ? err : new ProviderError(`NETWORK: ${errorText(err)}`, { transient: true });
    return handleRefusal(failure, job, token, record.attempts, record.channel, deps, log);
  }
  // A Redis error from here fails the job; the reconciler enqueues the `sending` message again
  // after its grace period and the message is sent again (at least once to the provider).
  // a message scheduled in the past is due from the moment it was created
  const lateness = startedAt - Math.max(record.sendAt, Date.parse(record.createdAt));
  const acceptedAt = Date.now();
  const lookupAt = receiptLookup && deps.receiptLookupAfterMs !== undefined ? acceptedAt + deps.receiptLookupAfterMs : undefined;
  await deps.scheduler.deliver(id, acceptedAt, providerMessageId, lateness, lookupAt);
  log.info({ latenessMs: lateness, providerMs: Date.now() - startedAt }, 'delivered');
  deps.observe?.attempt(record.channel, 'delivered');
}

/**
 * A 429 gives the attempt back and pauses the queue; a permanent error, or a transient one on the
 * last attempt, fails the message; any other transient error retries after a backoff.
 */
async function handleRefusal(failure: ProviderError, job: Job<DeliveryJobData>, token: string | undefined, attempts: number, channel: Channel, deps: DeliverDeps, log: Logger) {
  const { id } = job.data;
  if (failure.rateLimited) {
    const pauseMs = Math.min(MAX_RATE_LIMIT_PAUSE_MS, Math.max(MIN_RATE_LIMIT_PAUSE_MS, failure.retryAfterMs ?? RATE_LIMIT_PAUSE_MS));
    await deps.scheduler.release(id, Date.now(), failure.message);
    await deps.rateLimit(id, pauseMs);
    log.warn({ error: redactNumbers(failure.message), pauseMs }, 'provider rate limit: queue paused, attempt not counted');
    throw Worker.RateLimitError();
  }
  if (!failure.transient || attempts >= deps.maxAttempts) {
    await deps.scheduler.fail(id, Date.now(), failure.message);
    log.warn({ error: redactNumbers(failure.message) }, 'delivery failed');
    deps.observe?.attempt(channel, 'failed');
    return;
  }
  const nextAt = Date.now() + Math.max(deps.backoff(attempts), failure.retryAfterMs ?? 0);
  await deps.scheduler.retryLater(id, Date.now(), failure.message, nextAt);
  log.info({ error: redactNumbers(failure.message), nextAttemptAt: new Date(nextAt).toISOString() }, 'delivery will be retried');
  deps.observe?.attempt(channel, 'retried');
  return redelay(job, token, nextAt);
}

async function redelay(job: Job, token: string | undefined, timestamp: number): Promise<never> {
  await job.moveToDelayed(timestamp, token);
  throw new DelayedError();
}

function outbound(record: MessageRecord): OutboundMessage {
  const message: OutboundMessage = { id: record.id, channel: record.channel, recipient: record.recipient };
  if (record.message !== undefined) message.message = record.message;
  if (record.template !== undefined) message.template = record.template;
  return message;
}

/** Providers quote the recipient in some errors ("The 'To' number +1555… is not valid"): logs never carry it. */
function redactNumbers(text: string): string {
  return text.replace(/\+?\d{7,15}/g, '[number]');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Exponential backoff with full jitter: a random delay up to base·2^(n-1), capped. */
export function fullJitterBackoff(baseMs: number, capMs: number): (attempts: number) => number {
  return (attempts) => Math.floor(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempts - 1)));
}
