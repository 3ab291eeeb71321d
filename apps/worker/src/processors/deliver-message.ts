import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Channel, DeliveryJobData } from '@punctual/shared';
import type { MessageStore, StoredFields } from '@punctual/store';
import type { ChannelRegistry } from '../channels/registry.js';
import { ProviderError, type OutboundMessage } from '../channels/provider.js';

export interface DeliverDeps {
  store: MessageStore;
  channels: ChannelRegistry;
  log: Logger;
  /** DELIVERY_ATTEMPTS: attempts before a transiently failing message is failed. */
  maxAttempts: number;
  /** Delay before the next attempt, given the number of attempts made so far. */
  backoff: (attempts: number) => number;
  observe?: DeliveryObserver;
}

export type AttemptOutcome = 'delivered' | 'failed' | 'retried';

/** Told how each attempt ended (the worker's metrics). */
export interface DeliveryObserver {
  attempt(channel: Channel, outcome: AttemptOutcome): void;
}

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
  if (claim.outcome === 'final') return;
  if (claim.outcome === 'early') return redelay(job, token, claim.sendAt);

  const { record, fields } = claim;
  const log = deps.log.child({ messageId: id, tenant: fields.tenant, channel: record.channel, attempt: record.attempts });
  const provider = deps.channels.get(record.channel);
  const startedAt = Date.now();
  try {
    if (!provider) throw new ProviderError(`NO_PROVIDER: no provider for channel ${record.channel}`, { transient: false });
    const { providerMessageId } = await provider.send(outbound(fields));
    // a message scheduled in the past is due from the moment it was created
    const lateness = startedAt - Math.max(record.sendAt, Number(fields.createdAt));
    await deps.store.markDelivered(id, Date.now(), providerMessageId, lateness);
    log.info({ latenessMs: lateness, providerMs: Date.now() - startedAt }, 'delivered');
    deps.observe?.attempt(record.channel, 'delivered');
  } catch (err) {
    const failure = err instanceof ProviderError ? err : new ProviderError(`NETWORK: ${errorText(err)}`, { transient: true });
    if (!failure.transient || record.attempts >= deps.maxAttempts) {
      await deps.store.markFailed(id, Date.now(), failure.message);
      log.warn({ error: failure.message }, 'delivery failed');
      deps.observe?.attempt(record.channel, 'failed');
      return;
    }
    const nextAt = Date.now() + Math.max(deps.backoff(record.attempts), failure.retryAfterMs ?? 0);
    await deps.store.markRetrying(id, Date.now(), failure.message, nextAt);
    log.info({ error: failure.message, nextAttemptAt: new Date(nextAt).toISOString() }, 'delivery will be retried');
    deps.observe?.attempt(record.channel, 'retried');
    return redelay(job, token, nextAt);
  }
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
