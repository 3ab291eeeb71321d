import type { CancelReason, Channel, MessageRecord, MessageStatus, ReceiptStatus, SmsEncoding } from '@punctual/shared';

/**
 * A message as stored: one JSON object of string values, times as epoch ms, `template` and
 * `metadata` as JSON text (Lua's cjson would turn an empty array into an object and round
 * numbers past 14 digits).
 */
export type StoredFields = Record<string, string>;

const TIME_FIELDS = ['createdAt', 'updatedAt', 'deliveredAt', 'failedAt', 'canceledAt', 'nextAttemptAt', 'throttledAt'] as const;

export function parseStored(json: string): StoredFields {
  return JSON.parse(json) as StoredFields;
}

/** The public record (the contract's message record) of a stored one. */
export function toRecord(f: StoredFields): MessageRecord {
  const record: MessageRecord = {
    id: f.id!,
    recipient: f.recipient!,
    channel: f.channel as Channel,
    sendAt: Number(f.sendAt),
    status: f.status as MessageStatus,
    createdAt: '',
    updatedAt: '',
    attempts: Number(f.attempts ?? 0),
    version: Number(f.version ?? 1),
  };
  if (f.message !== undefined) record.message = f.message;
  if (f.template !== undefined) record.template = JSON.parse(f.template);
  for (const field of TIME_FIELDS) {
    if (f[field] !== undefined) record[field] = new Date(Number(f[field])).toISOString();
  }
  // a record never changed since it was created stores no updatedAt
  if (f.updatedAt === undefined) record.updatedAt = record.createdAt;
  if (f.cancelReason !== undefined) record.cancelReason = f.cancelReason as CancelReason;
  if (f.lastError !== undefined) record.lastError = f.lastError;
  if (f.providerMessageId !== undefined) record.providerMessageId = f.providerMessageId;
  if (f.receiptStatus !== undefined) {
    record.receipt = { status: f.receiptStatus as ReceiptStatus, at: new Date(Number(f.receiptAt)).toISOString() };
    if (f.receiptErrorCode !== undefined) record.receipt.errorCode = f.receiptErrorCode;
  }
  if (f.metadata !== undefined) record.metadata = JSON.parse(f.metadata);
  if (f.callbackUrl !== undefined) record.callbackUrl = f.callbackUrl;
  if (f.encoding !== undefined) record.encoding = f.encoding as SmsEncoding;
  if (f.segments !== undefined) record.segments = Number(f.segments);
  if (f.batchId !== undefined) record.batchId = f.batchId;
  if (f.timeZone !== undefined) record.timeZone = f.timeZone;
  if (f.quietHours !== undefined) record.quietHours = JSON.parse(f.quietHours);
  if (f.requestedSendAt !== undefined) record.requestedSendAt = Number(f.requestedSendAt);
  return record;
}

/** Stored values of input fields: objects as JSON text, everything else as a string; unset ones left out. */
export function storedValues(input: Record<string, unknown>): StoredFields {
  const fields: StoredFields = {};
  for (const [field, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    fields[field] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return fields;
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether every string of a value (keys included, at any depth) is well-formed UTF-16: Redis's Lua
 * cannot decode JSON that escapes a lone surrogate, so such a value must never reach a script.
 */
export function isWellFormedText(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.every(isWellFormedText);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([key, v]) => !LONE_SURROGATE.test(key) && isWellFormedText(v));
  }
  return true;
}
