import { createHmac } from 'node:crypto';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import type { CallbackJobData } from '@punctual/shared';
import { RequestTimeout, networkErrorText, post } from '../http-client.js';
import { addressRefusalOf, assertPublicUrl } from '../callbacks/address-guard.js';
import { receiverKey, type SlowReceivers, type TenantSlots } from '../callbacks/fair-share.js';

export interface CallbackDeps {
  /** Connection pool whose lookup refuses non-public addresses (unless they are allowed). */
  dispatcher: Dispatcher;
  /** CALLBACK_SECRET: signs the callbacks of tenants without their own; unset = those go unsigned. */
  secret?: string;
  /** CALLBACK_SECRETS: a tenant's own signing secret. */
  tenantSecrets: ReadonlyMap<string, string>;
  allowPrivate: boolean;
  /** CALLBACK_TIMEOUT_MS. */
  timeoutMs: number;
  slots: TenantSlots;
  receivers: SlowReceivers;
}

/** A job over its tenant's share waits a little, then longer each time it is put back, up to this. */
const DEFER_BASE_MS = 200;
const DEFER_MAX_MS = 30_000;

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`: the receiver recomputes v1 over
 * the exact bytes it received and rejects an old `t`, so a captured callback cannot be replayed.
 */
export function callbackSignature(rawBody: string, secret: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** The tenant's own secret, else CALLBACK_SECRET: never another tenant's. */
export function signingSecret(tenant: string | undefined, deps: Pick<CallbackDeps, 'secret' | 'tenantSecrets'>): string | undefined {
  return (tenant === undefined ? undefined : deps.tenantSecrets.get(tenant)) ?? deps.secret;
}

/**
 * Runs a callback job. A tenant with its share of callbacks in flight has the job put back for a
 * moment without spending an attempt (see fair-share.ts); otherwise the callback is posted.
 */
export async function sendCallback(job: Job<CallbackJobData>, token: string | undefined, deps: CallbackDeps): Promise<{ status: number }> {
  const { tenant } = job.data;
  if (!deps.slots.tryTake(tenant)) {
    await job.moveToDelayed(Date.now() + deferral(job), token);
    throw new DelayedError();
  }
  try {
    return await postCallback(job, deps);
  } finally {
    deps.slots.release(tenant);
  }
}

/**
 * POSTs `{"event":…,"data":<record>}` to the message's callbackUrl. A non-2xx answer or no answer
 * throws, so BullMQ retries with backoff; a refused address fails the job for good; a receiver
 * that just timed out is not asked again until it has cooled down.
 */
async function postCallback(job: Job<CallbackJobData>, deps: CallbackDeps): Promise<{ status: number }> {
  const { event, record, tenant } = job.data;
  const url = record.callbackUrl!;
  const receiver = receiverKey(tenant, url);
  if (!deps.receivers.admit(receiver, Date.now())) throw new Error('callback not sent: the receiver timed out on a recent callback');
  const body = JSON.stringify({ event, data: record });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'punctual-callbacks/1',
    'x-punctual-event': event,
    'x-punctual-delivery-id': String(job.id),
  };
  const secret = signingSecret(tenant, deps);
  if (secret) headers['x-signature'] = callbackSignature(body, secret);
  let status: number;
  try {
    if (!deps.allowPrivate) assertPublicUrl(url);
    ({ status } = await post(deps.dispatcher, url, headers, body, deps.timeoutMs));
  } catch (err) {
    if (err instanceof RequestTimeout) {
      deps.receivers.timedOut(receiver, Date.now());
      throw new Error(`callback timed out: ${err.message}`);
    }
    deps.receivers.settled(receiver);
    const refusal = addressRefusalOf(err);
    if (refusal) throw new UnrecoverableError(refusal.message);
    throw new Error(`callback not delivered: ${networkErrorText(err)}`);
  }
  deps.receivers.settled(receiver);
  if (status < 200 || status >= 300) throw new Error(`callback answered HTTP ${status}`);
  return { status };
}

/**
 * How long a job over its tenant's share waits: doubling with each time it was put back already
 * (BullMQ counts starts apart from attempts), jittered, so a tenant's backlog does not spin.
 */
function deferral(job: Job): number {
  const putBack = Math.max(0, job.attemptsStarted - 1 - job.attemptsMade);
  const ceiling = Math.min(DEFER_MAX_MS, DEFER_BASE_MS * 2 ** Math.min(putBack, 16));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
