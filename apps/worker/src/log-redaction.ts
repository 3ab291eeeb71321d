import type { Logger } from 'pino';
import type { MessageRecord } from '@punctual/shared';

/** A phone number as providers quote it: E.164 with or without `+` (also inside `whatsapp:+…`). */
const PHONE_NUMBER = /\+?\d{7,15}/g;

/** Quoted spans of a provider's text: 'x', "x", “x”. */
const QUOTED = /'([^']*)'|"([^"]*)"|“([^”]*)”/g;

/** Shorter private values are left alone: redacting "ok" everywhere would garble the text. */
const MIN_PRIVATE_LENGTH = 3;

/** A quoted excerpt of a private value this long or longer is redacted (shorter: a field name like 'body'). */
const MIN_EXCERPT_LENGTH = 8;

/**
 * A text fit for the logs: phone numbers become `[number]`, and the message's own text
 * (`privateValues`: its body, its template variables) becomes `[redacted]` wherever it appears,
 * whole or as a quoted excerpt. Providers quote both in their error messages.
 */
export function redactText(text: string, privateValues: readonly (string | undefined)[] = []): string {
  const values = privateValues.filter((v): v is string => v !== undefined && v.length >= MIN_PRIVATE_LENGTH);
  let safe = text;
  for (const value of values) safe = safe.split(value).join('[redacted]');
  if (values.length > 0) {
    safe = safe.replace(QUOTED, (quote, ...groups: (string | undefined)[]) => {
      const inner = groups.slice(0, 3).find((g) => g !== undefined) ?? '';
      return inner.length >= MIN_EXCERPT_LENGTH && values.some((v) => v.includes(inner)) ? `${quote[0]}[redacted]${quote.at(-1)}` : quote;
    });
  }
  return safe.replace(PHONE_NUMBER, '[number]');
}

interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  code?: string | number;
  cause?: SerializedError;
}

/**
 * pino's `err` serializer for the worker. It keeps what says what went wrong (type, code, message,
 * stack, cause) and drops every other property: a Redis client error carries `command.args`, the
 * arguments of the failed command, which may hold a recipient or a message body.
 */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (!(err instanceof Error)) return { type: typeof err, message: redactText(String(err)) };
  const serialized: SerializedError = { type: err.name || err.constructor.name, message: redactText(err.message) };
  if (err.stack) serialized.stack = redactText(err.stack);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') serialized.code = code;
  if (err.cause !== undefined && depth < 3) serialized.cause = serializeError(err.cause, depth + 1);
  return serialized;
}

export const SAFE_SERIALIZERS = { err: serializeError };

/** A child of `log` whose errors are serialized by `serializeError`, whoever built `log`. */
export function withSafeErrors(log: Logger): Logger {
  return log.child({}, { serializers: SAFE_SERIALIZERS });
}

/** A stored message's texts, for `redactText`: body and template variables (its recipient is a number). */
export function privateValuesOf(record: Pick<MessageRecord, 'message' | 'template'>): string[] {
  return [...(record.message === undefined ? [] : [record.message]), ...(record.template?.variables ?? [])];
}
