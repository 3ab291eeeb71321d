import type { Dispatcher } from 'undici';
import type { TwilioConfig } from '../config.js';
import { get, networkErrorText, type HttpAnswer } from '../http-client.js';
import { parseJson } from './provider-http.js';
import { twilioAuthHeader, twilioMessagesUrl } from './twilio.js';

/**
 * What Twilio's Message resource says: `found` (its status, error code and last update),
 * `gone` (404: no such message), `rateLimited` (429), `refused` (another 4xx, such as bad
 * credentials: asking again will not help), `unavailable` (network, timeout, 5xx: ask again later).
 */
export type TwilioLookup =
  | { outcome: 'found'; status: string; errorCode?: string; at?: number }
  | { outcome: 'gone' | 'rateLimited' | 'unavailable' | 'refused'; reason: string };

/**
 * `GET {TWILIO_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` with HTTP Basic,
 * the way Twilio's guide tracks a message without status callbacks.
 */
export function createTwilioLookup(config: TwilioConfig, dispatcher: Dispatcher, timeoutMs: number) {
  const base = `${twilioMessagesUrl(config)}/`;
  const headers = { authorization: twilioAuthHeader(config), accept: 'application/json' };
  return async function lookUp(sid: string): Promise<TwilioLookup> {
    let answer: HttpAnswer;
    try {
      answer = await get(dispatcher, `${base}${encodeURIComponent(sid)}.json`, headers, timeoutMs);
    } catch (err) {
      return { outcome: 'unavailable', reason: networkErrorText(err) };
    }
    const { status } = answer;
    if (status === 429) return { outcome: 'rateLimited', reason: 'HTTP 429' };
    if (status === 404) return { outcome: 'gone', reason: 'HTTP 404' };
    if (status >= 500 || status === 408) return { outcome: 'unavailable', reason: `HTTP ${status}` };
    if (status < 200 || status >= 300) return { outcome: 'refused', reason: `HTTP ${status}` };
    // a Message resource is about 2 KB: a truncated answer is not one, even when its start parses
    const body = (answer.truncated ? undefined : parseJson(answer.body)) as { status?: unknown; error_code?: unknown; date_updated?: unknown } | undefined;
    if (typeof body?.status !== 'string') return { outcome: 'unavailable', reason: `HTTP ${status} without a status` };
    const found: TwilioLookup = { outcome: 'found', status: body.status };
    if (typeof body.error_code === 'number' || (typeof body.error_code === 'string' && body.error_code !== '')) found.errorCode = String(body.error_code);
    // RFC 2822, e.g. "Thu, 24 Aug 2023 05:01:45 +0000": when the message took its current status
    const at = typeof body.date_updated === 'string' ? Date.parse(body.date_updated) : NaN;
    if (Number.isFinite(at)) found.at = at;
    return found;
  };
}
