import { CloneType } from '@sinclair/typebox';
import { ErrorResponse } from '@punctual/shared';

const WHEN = {
  400: 'Invalid request: bad JSON, wrong types, unknown fields, bad cursor (details list each problem)',
  401: 'Missing or unknown API key',
  404: 'No such message (an unknown or malformed id)',
  409: 'The message is not in a state that allows this, or a request with the same Idempotency-Key is in progress',
  412: 'If-Match names another version of the message than the current one',
  413: 'Body larger than 64 KB (4 MB for a batch)',
  415: 'Body is not application/json',
  422: 'Idempotency-Key reused with another body, or RECIPIENT_OPTED_OUT: the recipient opted out of the channel or is on the tenant\'s suppression list',
  429: 'Rate limit of the tenant reached (see Retry-After)',
  500: 'Unexpected error (never with internals)',
  503: 'Redis unavailable: nothing was stored, retry later',
} as const;

export type ErrorStatus = keyof typeof WHEN;

/** Response schemas of the errors a route can answer with, in the contract's error shape. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, CloneType(ErrorResponse, { description: WHEN[status] })])) as Record<S, typeof ErrorResponse>;
}

/** Every route that needs an API key can also be refused for the key, the rate limit or Redis. */
export const COMMON_ERRORS = [401, 429, 500, 503] as const;
