import type { Channel, MessageRecord, MessageStatus } from '@punctual/shared';

/** Fields of a message as stored in its Redis hash: strings, times as epoch ms. */
export type StoredFields = Record<string, string>;

const TIME_FIELDS = ['createdAt', 'updatedAt', 'deliveredAt', 'failedAt', 'canceledAt', 'nextAttemptAt'] as const;

export function fieldsFromFlat(flat: string[]): StoredFields {
  const fields: StoredFields = {};
  for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

/** The public record (contract section 3) of a stored hash. */
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
  if (f.lastError !== undefined) record.lastError = f.lastError;
  if (f.providerMessageId !== undefined) record.providerMessageId = f.providerMessageId;
  if (f.metadata !== undefined) record.metadata = JSON.parse(f.metadata);
  if (f.callbackUrl !== undefined) record.callbackUrl = f.callbackUrl;
  return record;
}
