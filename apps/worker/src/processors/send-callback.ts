import { createHmac } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import type { CallbackJobData } from '@punctual/shared';
import { RequestTimeout, networkErrorText, post } from '../http-client.js';
import { addressRefusalOf, assertPublicUrl } from '../callbacks/address-guard.js';

export interface CallbackDeps {
  /** Connection pool whose lookup refuses non-public addresses (unless they are allowed). */
  dispatcher: Dispatcher;
  /** CALLBACK_SECRET: signs the callbacks of tenants without their own; unset = those go unsigned. */
  secret?: string;
  /** CALLBACK_SECRETS: a tenant's own signing secret. */
  tenantSecrets: ReadonlyMap<string, string>;
  allowPrivate: boolean;
  timeoutMs: number;
}

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
 * POSTs `{"event":…,"data":<record>}` to the message's callbackUrl. A non-2xx answer or no answer
 * throws, so BullMQ retries with backoff; a refused address fails the job for good.
 */
export async function sendCallback(job: Job<CallbackJobData>, deps: CallbackDeps): Promise<{ status: number }> {
  const { event, record, tenant } = job.data;
  const url = record.callbackUrl!;
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
    const refusal = addressRefusalOf(err);
    if (refusal) throw new UnrecoverableError(refusal.message);
    if (err instanceof RequestTimeout) throw new Error(`callback timed out: ${err.message}`);
    throw new Error(`callback not delivered: ${networkErrorText(err)}`);
  }
  if (status < 200 || status >= 300) throw new Error(`callback answered HTTP ${status}`);
  return { status };
}
