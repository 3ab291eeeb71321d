import type { Dispatcher } from 'undici';
import { RequestTimeout, networkErrorText, post, retryAfterMs, type HttpAnswer } from '../http-client.js';
import { ProviderError } from './provider.js';

/** How a provider's error codes map onto retry decisions; anything else goes by HTTP status. */
export interface ErrorCodes {
  /** Throughput limits of the sender or account: slow the channel down. */
  rateLimited: ReadonlySet<number>;
  /** Limits on messages to one recipient: slow that recipient's messages down. */
  recipientRateLimited?: ReadonlySet<number>;
  /** Worth another attempt later. */
  transient: ReadonlySet<number>;
  /** The recipient opted out (unsubscribed) of the sender: permanent, and suppresses the recipient. */
  optedOut?: ReadonlySet<number>;
}

/** The provider's error, as far as its body tells it. */
export interface ProviderFailure {
  code?: number;
  message?: string;
}

/** A provider's HTTP endpoint: one keep-alive pool and one deadline per request. */
export class ProviderHttp {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly timeoutMs: number,
  ) {}

  /** POSTs; no answer (network error, timeout) is a transient ProviderError. */
  async post(url: string, headers: Record<string, string>, body: string): Promise<HttpAnswer> {
    try {
      return await post(this.dispatcher, url, headers, body, this.timeoutMs);
    } catch (err) {
      if (err instanceof RequestTimeout) throw new ProviderError(`TIMEOUT: ${err.message}`, { transient: true });
      throw new ProviderError(`NETWORK: ${networkErrorText(err)}`, { transient: true });
    }
  }
}

/**
 * The ProviderError of an unsuccessful answer: `lastError` is `<provider code>: <its message>`
 * (`HTTP_<status>` when the body names no code). 429 and the rate-limit codes slow the channel,
 * the recipient rate-limit codes that recipient, 408, 5xx and the transient codes retry, any
 * other 4xx is permanent.
 */
export function refusal(answer: HttpAnswer, failure: ProviderFailure, codes: ErrorCodes): ProviderError {
  const code = failure.code ?? `HTTP_${answer.status}`;
  const message = failure.message || answer.body.slice(0, 200) || `HTTP status ${answer.status}`;
  const text = `${code}: ${message}`;
  const retryAfter = retryAfterMs(answer.headers);
  const options = retryAfter === undefined ? {} : { retryAfterMs: retryAfter };
  if (answer.status === 429 || (failure.code !== undefined && codes.rateLimited.has(failure.code))) {
    return new ProviderError(text, { ...options, transient: true, rateLimited: true });
  }
  if (failure.code !== undefined && codes.recipientRateLimited?.has(failure.code)) {
    return new ProviderError(text, { ...options, transient: true, recipientRateLimited: true });
  }
  const transient = (failure.code !== undefined && codes.transient.has(failure.code)) || answer.status === 408 || answer.status >= 500;
  const recipientOptedOut = failure.code !== undefined && codes.optedOut?.has(failure.code) === true;
  return new ProviderError(text, { ...options, transient, recipientOptedOut });
}

/** The JSON of an answer's body, or undefined when it is not JSON. */
export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

export function isSuccess(answer: HttpAnswer): boolean {
  return answer.status >= 200 && answer.status < 300;
}

/** A 2xx without the id we need: the provider may have sent it, so retrying could send twice. */
export function unreadableSuccess(answer: HttpAnswer): ProviderError {
  return new ProviderError(`INVALID_RESPONSE: HTTP ${answer.status} without a message id: ${answer.body.slice(0, 200)}`, { transient: false });
}
