import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';

/** Fields that may carry a phone number, a message body or a credential, wherever they are logged. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.body',
  'body',
  'recipient',
  'message',
  'template',
  '*.recipient',
  'data.message',
  'record.message',
  '*.template',
];

/** What a logged error keeps: what went wrong and where, never the data it was working on. */
const ERROR_FIELDS = ['message', 'stack', 'code', 'statusCode', 'errno', 'syscall'] as const;
const MAX_ERROR_DEPTH = 3;

/**
 * An error as a log line shows it: its type, message, stack and codes, and the same of its cause
 * and of the errors it groups. Everything else is left out, because errors carry request data:
 * ioredis puts the failed command and its arguments (phone numbers, message text) on `command`,
 * ajv's validation errors the values they checked.
 */
export function safeError(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  const err = value as Record<string, unknown>;
  const safe: Record<string, unknown> = { type: value instanceof Error ? value.constructor.name : 'Object' };
  for (const field of ERROR_FIELDS) {
    const v = err[field];
    if (typeof v === 'string' || typeof v === 'number') safe[field] = v;
  }
  if (depth < MAX_ERROR_DEPTH) {
    if (err.cause !== undefined) safe.cause = safeError(err.cause, depth + 1);
    for (const group of ['errors', 'previousErrors'] as const) {
      const list = err[group];
      if (Array.isArray(list)) safe[group] = list.slice(0, 10).map((e) => safeError(e, depth + 1));
    }
  }
  return safe;
}

/** Errors logged under another key than `err` get the same treatment. */
function withSafeErrors(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(object)) {
    if (key !== 'err' && value instanceof Error) (copy ??= { ...object })[key] = safeError(value);
  }
  return copy ?? object;
}

/** Query parameters logged as sent; every other value (access_token, recipient…) is redacted. */
const LOGGED_QUERY_PARAMS = new Set(['limit', 'cursor', 'channel', 'status', 'receipt', 'since', 'from', 'to']);

export function loggerOptions(level: string, stream?: DestinationStream): LoggerOptions & { stream?: DestinationStream } {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { log: withSafeErrors },
    serializers: {
      err: safeError,
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: loggableUrl(request.url),
        remoteAddress: request.ip,
      }),
      res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
    },
    ...(stream ? { stream } : {}),
  };
}

/** A path segment with seven digits or more that is no message id: maybe a phone number (`/suppressions/sms/+5511…`). */
const PHONE_SEGMENT = /(?<=\/)(?![0-9A-HJKMNP-TV-Z]{26}(?:[/?]|$))(?:[^/?0-9]*[0-9]){7}[^/?]*/g;

/**
 * The URL with phone numbers in its path and the values of query parameters that may hold
 * secrets or personal data redacted.
 */
export function loggableUrl(rawUrl: string): string {
  const q0 = rawUrl.indexOf('?');
  const url = q0 < 0 ? rawUrl.replace(PHONE_SEGMENT, '[redacted]') : rawUrl.slice(0, q0).replace(PHONE_SEGMENT, '[redacted]') + rawUrl.slice(q0);
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return eq < 0 || LOGGED_QUERY_PARAMS.has(name) ? pair : `${name}=[redacted]`;
    });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

/** Adds bindings to every later log line of this request (its own and Fastify's). */
export function bindLog(reply: FastifyReply, bindings: Record<string, string>): void {
  const log = reply.log as FastifyBaseLogger & Partial<Pick<Logger, 'setBindings'>>;
  if (log.setBindings && reply.request.log === log) {
    // the request's own logger (Fastify makes one per request): no second child per request
    log.setBindings(bindings);
    return;
  }
  const child = reply.log.child(bindings);
  reply.log = child;
  reply.request.log = child;
}

/**
 * One line per request, when it completes: by then the tenant and message id are bound to the
 * reply's logger (an "incoming request" line would come before the API key is even checked).
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { req: request, res: reply, responseTime: Math.round(reply.elapsedTime) };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}
