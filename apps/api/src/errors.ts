import createError from '@fastify/error';
import { ERROR_CODES, type ErrorCode } from '@punctual/shared';

function define(code: ErrorCode, message: string) {
  return createError(code, message, ERROR_CODES[code]);
}

export const MessageNotFound = define('MESSAGE_NOT_FOUND', 'Message %s not found');
export const MessageNotScheduled = define(
  'MESSAGE_NOT_SCHEDULED',
  'Message %s is %s: only a scheduled message can be changed or canceled',
);
export const MessageNotFailed = define('MESSAGE_NOT_FAILED', 'Message %s is %s: only a failed message can be retried');
export const InvalidCursor = define('INVALID_CURSOR', 'cursor is not one this API returned');
export const RedisUnavailable = define('REDIS_UNAVAILABLE', 'Redis is unavailable; nothing was stored, retry later');

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

export const OriginNotAllowed = define('ORIGIN_NOT_ALLOWED', 'Origin %s may not open the live feed');
export const UpgradeRequired = define('UPGRADE_REQUIRED', 'GET /ws is a WebSocket: send an upgrade request');
