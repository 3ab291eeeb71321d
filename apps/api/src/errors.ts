import createError from '@fastify/error';
import { ERROR_CODES, type ErrorCode } from '@punctual/shared';

function define(code: ErrorCode, message: string) {
  return createError(code, message, ERROR_CODES[code]);
}

export const MessageNotFound = define('MESSAGE_NOT_FOUND', 'Message %s not found');
export const BatchNotFound = define('BATCH_NOT_FOUND', 'Batch %s not found');
export const MessageNotScheduled = define(
  'MESSAGE_NOT_SCHEDULED',
  'Message %s is %s: only a scheduled message can be changed or canceled',
);
export const VersionMismatch = define(
  'VERSION_MISMATCH',
  'Message %s is at version %s, not the one If-Match names: read it again, then retry',
);
export const MessageNotFailed = define('MESSAGE_NOT_FAILED', 'Message %s is %s: only a failed message can be retried');
export const InvalidCursor = define('INVALID_CURSOR', 'cursor is not one this API returned');
export const ConsoleNotBuilt = define('CONSOLE_NOT_BUILT', 'The console is not built: run `pnpm build`, then restart the API');
export const RedisUnavailable = define('REDIS_UNAVAILABLE', 'Redis is unavailable; nothing was stored, retry later');
export const Unauthorized = define(
  'UNAUTHORIZED',
  'A valid API key is required: send it as "Authorization: Bearer <key>" or "x-api-key: <key>"',
);
export const RateLimited = define('RATE_LIMITED', 'Rate limit of %s requests per %s ms reached; retry in %s');
export const TooManyFailedKeys = define(
  'RATE_LIMITED',
  'Too many requests with an unknown API key from this address; retry in %s s',
);
export const ScheduledLimitReached = define(
  'SCHEDULED_LIMIT_REACHED',
  'This tenant has %s scheduled messages, the most allowed; cancel some or wait for deliveries',
);
export const IdempotencyKeyReused = define(
  'IDEMPOTENCY_KEY_REUSED',
  'This Idempotency-Key was used with another body; use a new key for a new request',
);
export const IdempotencyInProgress = define(
  'IDEMPOTENCY_IN_PROGRESS',
  'A request with this Idempotency-Key is still being processed; retry after it completes',
);

/** A 400 about one field of the request, in the same shape as schema validation errors. */
export class InvalidField extends Error {
  readonly statusCode = 400;
  readonly code = 'VALIDATION_ERROR';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path} ${message}`);
  }
}

export const FeedClientLimitReached = define(
  'FEED_CLIENT_LIMIT_REACHED',
  'This tenant has %s live-feed connections open on this API instance, the most allowed; close one first',
);
export const NotSuppressed = define('SUPPRESSION_NOT_FOUND', 'The recipient is not suppressed for this tenant on %s');
export const NotOnTenantList = define('SUPPRESSION_NOT_FOUND', "The recipient is not on this tenant's suppression list for %s%s");
const OptedOutEverywhere = define(
  'RECIPIENT_OPTED_OUT',
  'The recipient opted out of this channel (a STOP reply, or the provider reports them unsubscribed): nothing was changed; only they can opt back in (START)',
);
const OnTenantList = define(
  'RECIPIENT_OPTED_OUT',
  "The recipient is on this tenant's suppression list for this channel: nothing was changed (DELETE /suppressions/{channel}/{recipient} lifts it)",
);

/** The 422 of a write to a suppressed recipient; `by` is the list that refused it (`deployment` or `tenant`). */
export function recipientOptedOut(by: string | undefined): Error {
  return by === 'tenant' ? new OnTenantList() : new OptedOutEverywhere();
}

export const BOTH_CONTENTS = () => new InvalidField('/template', 'cannot be sent together with message');
export const NO_CONTENT = () => new InvalidField('/message', 'is required (or a template on the whatsapp channel)');
export const TEMPLATE_CHANNEL = () => new InvalidField('/template', 'is only available on the whatsapp channel');

/** The 400 of an update the script refused because the merged record would be invalid. */
export function contentRefusal(detail: string | undefined): InvalidField {
  return detail === 'template_channel' ? TEMPLATE_CHANNEL() : NO_CONTENT();
}

/**
 * The error the scheduler's refusal of a change is answered with: `cap` is the tenant's
 * (MAX_SCHEDULED_PER_TENANT), `id` the message changed (when the request names one). A refusal
 * no request should meet (`exists`, `recheck`) is a plain error: a 500.
 */
export function refusalError({ reason, detail }: { reason: string; detail?: string }, cap: number, id = ''): Error {
  switch (reason) {
    case 'not_found':
      return new MessageNotFound(id);
    case 'not_scheduled':
      return new MessageNotScheduled(id, detail);
    case 'not_failed':
      return new MessageNotFailed(id, detail);
    case 'version_mismatch':
      return new VersionMismatch(id, detail);
    case 'invalid':
      return contentRefusal(detail);
    case 'quota':
      return new ScheduledLimitReached(cap);
    case 'opted_out':
      return recipientOptedOut(detail);
    case 'unavailable':
      return new RedisUnavailable();
    default:
      return new Error(`Unexpected refusal ${reason} of message ${id}`);
  }
}

export const OriginNotAllowed = define('ORIGIN_NOT_ALLOWED', 'Origin %s may not open the live feed');
export const UpgradeRequired = define('UPGRADE_REQUIRED', 'GET /ws is a WebSocket: send an upgrade request');

export const InvalidSignature = define('INVALID_SIGNATURE', '%s is missing or does not match this request');
export const UnsupportedMediaType = define('UNSUPPORTED_MEDIA_TYPE', 'Body must be %s');
