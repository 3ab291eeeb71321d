import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Channel, DeliveryJobData, MessageRecord } from '@punctual/shared';
import type { Scheduler } from '@punctual/store';
import type { ChannelRegistry } from '../channels/registry.js';
import { ProviderError, type OutboundMessage } from '../channels/provider.js';
import { privateValuesOf, redactText } from '../log-redaction.js';
import type { DeliveryPacing } from '../pacing.js';

export interface DeliverDeps {
  scheduler: Scheduler;
  /** This worker process, named on the claims it makes (a dead worker's claims are handed on). */
  workerId?: string;
  channels: ChannelRegistry;
  log: Logger;
  /** DELIVERY_ATTEMPTS: attempts before a transiently failing message is failed. */
  maxAttempts: number;
  /** Delay before the next attempt, given the number of attempts made so far. */
  backoff: (attempts: number) => number;
  /** The channels' rates and the pauses providers ask for, fleet-wide. */
  pacing: Pick<DeliveryPacing, 'admit' | 'pauseChannel' | 'pauseRecipient'>;
  /** THROTTLE_MAX_MS: a message still refused for its rate this long after the first refusal fails. */
  throttleMaxMs: number;
  observe?: DeliveryObserver;
  /** RECEIPT_POLL_AFTER_MS: when a provider's message can be looked up, its receipt is, this long after acceptance. */
  receiptLookupAfterMs?: number;
}

export type AttemptOutcome = 'delivered' | 'failed' | 'retried' | 'throttled';

/** Told how each attempt ended (the worker's metrics). */
export interface DeliveryObserver {
  attempt(channel: Channel, outcome: AttemptOutcome): void;
}

/** Pause of the channel after a provider 429 that names no Retry-After, and the range honoured. */
export const RATE_LIMIT_PAUSE_MS = 1000;
/** Pause of one recipient after Meta's 131056 without Retry-After: Meta allows about one message per 6 s to a user. */
export const RECIPIENT_PAUSE_MS = 6000;
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
  // Paced before the claim: a message waiting for its slot is still scheduled, so it can be canceled.
  const slot = await deps.pacing.admit(id, now);
  if (slot !== undefined) return redelay(job, token, slot);
  const claim = await deps.scheduler.claim(id, now, deps.workerId);
  if (claim.outcome === 'missing') {
    // record and job are written in one MULTI: this job outlived its record (retention)
    deps.log.warn({ messageId: id }, 'delivery job without a message record: dropped');
    return;
  }
  // a job re-run after its worker died, maybe before it queued the callback
  if (claim.outcome === 'final') return deps.scheduler.notifyFinal(id);
  if (claim.outcome === 'early') return redelay(job, token, claim.sendAt);

  const { record, tenant } = claim;
  const bindings = { messageId: id, tenant, channel: record.channel, attempt: record.attempts };
  const provider = deps.channels.get(record.channel);
  const startedAt = Date.now();
  let providerMessageId: string;
  let receiptLookup: boolean | undefined;
  try {
    if (!provider) throw new ProviderError(`NO_PROVIDER: no provider for channel ${record.channel}`, { transient: false });
    ({ providerMessageId, receiptLookup } = await provider.send(outbound(record)));
  } catch (err) {
    const failure = err instanceof ProviderError ? err : new ProviderError(`NETWORK: ${errorText(err)}`, { transient: true });
    const log = deps.log.child(bindings);
    if (failure.rateLimited || failure.recipientRateLimited) return handleThrottle(failure, job, token, record, deps, log);
    await handleRefusal(failure, job, token, record, deps, log);
    if (failure.recipientOptedOut) await suppressUnsubscribed(record, deps, log);
    return;
  }
  // A Redis error from here fails the job; the reconciler enqueues the `sending` message again
  // after its grace period and the message is sent again (at least once to the provider).
  // a message scheduled in the past is due from the moment it was created
  const lateness = startedAt - Math.max(record.sendAt, Date.parse(record.createdAt));
  const acceptedAt = Date.now();
  const lookupAt = receiptLookup && deps.receiptLookupAfterMs !== undefined ? acceptedAt + deps.receiptLookupAfterMs : undefined;
  await deps.scheduler.deliver(id, acceptedAt, providerMessageId, lateness, lookupAt);
  // no child logger on the way that succeeds: one line, its bindings inline
  deps.log.info({ ...bindings, latenessMs: lateness, providerMs: Date.now() - startedAt }, 'delivered');
  deps.observe?.attempt(record.channel, 'delivered');
}

/**
 * A provider's rate limit gives the attempt back and pauses, on every worker, the channel (a 429)
 * or only this recipient's messages (Meta 131056) for Retry-After or a default; the message comes
 * back when the pause ends. One still refused THROTTLE_MAX_MS after its first refusal fails.
 */
async function handleThrottle(failure: ProviderError, job: Job<DeliveryJobData>, token: string | undefined, record: MessageRecord, deps: DeliverDeps, log: Logger) {
  const { id } = job.data;
  const now = Date.now();
  const since = record.throttledAt === undefined ? now : Date.parse(record.throttledAt);
  if (now - since >= deps.throttleMaxMs) {
    const refused = failure.rateLimited ? 'the 429' : 'the recipient rate limit';
    const lastError = `${failure.message} (still throttled ${Math.round((now - since) / 1000)} s after ${refused} first refused it: THROTTLE_MAX_MS)`;
    await deps.scheduler.fail(id, now, lastError);
    log.warn({ error: redactText(lastError, privateValuesOf(record)) }, 'delivery failed: throttled too long');
    deps.observe?.attempt(record.channel, 'failed');
    return;
  }
  const fallbackMs = failure.rateLimited ? RATE_LIMIT_PAUSE_MS : RECIPIENT_PAUSE_MS;
  const pauseMs = Math.min(MAX_RATE_LIMIT_PAUSE_MS, Math.max(MIN_RATE_LIMIT_PAUSE_MS, failure.retryAfterMs ?? fallbackMs));
  const until = now + pauseMs;
  await deps.scheduler.release(id, now, failure.message);
  if (failure.rateLimited) await deps.pacing.pauseChannel(record.channel, until);
  else await deps.pacing.pauseRecipient(record.channel, record.recipient, until);
  log.warn({ error: redactText(failure.message, privateValuesOf(record)), pauseMs, paused: failure.rateLimited ? 'channel' : 'recipient' }, 'provider rate limit: paused, attempt not counted');
  deps.observe?.attempt(record.channel, 'throttled');
  return redelay(job, token, until);
}

/**
 * A permanent error, or a transient one on the last attempt, fails the message; any other
 * transient error retries after a backoff.
 */
async function handleRefusal(failure: ProviderError, job: Job<DeliveryJobData>, token: string | undefined, record: MessageRecord, deps: DeliverDeps, log: Logger) {
  const { attempts, channel } = record;
  const { id } = job.data;
  const error = redactText(failure.message, privateValuesOf(record));
  if (!failure.transient || attempts >= deps.maxAttempts) {
    await deps.scheduler.fail(id, Date.now(), failure.message);
    log.warn({ error }, 'delivery failed');
    deps.observe?.attempt(channel, 'failed');
    return;
  }
  const nextAt = Date.now() + Math.max(deps.backoff(attempts), failure.retryAfterMs ?? 0);
  await deps.scheduler.retryLater(id, Date.now(), failure.message, nextAt);
  log.info({ error, nextAttemptAt: new Date(nextAt).toISOString() }, 'delivery will be retried');
  deps.observe?.attempt(channel, 'retried');
  return redelay(job, token, nextAt);
}

/**
 * The provider says the recipient unsubscribed from our sender (Twilio 21610): the message failed
 * (a permanent error), and the recipient is opted out of the channel for every tenant, which
 * cancels its other scheduled messages. Should this fail, the next send gets 21610 again.
 */
async function suppressUnsubscribed(record: MessageRecord, deps: DeliverDeps, log: Logger) {
  try {
    const { canceled } = await deps.scheduler.suppressions.optOut({ channel: record.channel, recipient: record.recipient }, 'provider', Date.now());
    log.warn({ canceled }, 'provider reports the recipient unsubscribed: opted out of the channel for every tenant');
  } catch (err) {
    // the worker's log (withSafeErrors) drops a Redis error's command arguments and redacts numbers
    log.warn({ err }, 'provider reports the recipient unsubscribed, but the opt-out was not stored');
  }
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Exponential backoff with full jitter: a random delay up to base·2^(n-1), capped. */
export function fullJitterBackoff(baseMs: number, capMs: number): (attempts: number) => number {
  return (attempts) => Math.floor(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempts - 1)));
}
