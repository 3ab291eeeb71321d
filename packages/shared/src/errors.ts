import { Type } from '@sinclair/typebox';

/** Every error code the API answers with, and its HTTP status. */
export const ERROR_CODES = {
  VALIDATION_ERROR: 400,
  INVALID_CURSOR: 400,
  UNAUTHORIZED: 401,
  ORIGIN_NOT_ALLOWED: 403,
  INVALID_SIGNATURE: 403,
  MESSAGE_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  SUPPRESSION_NOT_FOUND: 404,
  BATCH_NOT_FOUND: 404,
  MESSAGE_NOT_SCHEDULED: 409,
  MESSAGE_NOT_FAILED: 409,
  IDEMPOTENCY_IN_PROGRESS: 409,
  VERSION_MISMATCH: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UPGRADE_REQUIRED: 426,
  IDEMPOTENCY_KEY_REUSED: 422,
  RECIPIENT_OPTED_OUT: 422,
  RATE_LIMITED: 429,
  SCHEDULED_LIMIT_REACHED: 429,
  FEED_CLIENT_LIMIT_REACHED: 429,
  INTERNAL_ERROR: 500,
  REDIS_UNAVAILABLE: 503,
  CONSOLE_NOT_BUILT: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  details: Type.Optional(
    Type.Array(Type.Object({ path: Type.String(), message: Type.String() })),
  ),
});
