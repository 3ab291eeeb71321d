import { smsSegments, type Channel, type SmsEncoding } from '@punctual/shared';

/** What an SMS record stores about its text: computed once, when the text or channel is set. */
export interface SmsFields {
  encoding: SmsEncoding;
  segments: number;
}

/**
 * The `encoding` and `segments` a message stores: an SMS with text has both; a WhatsApp message,
 * a template, or a message without text has none. The one place they are computed (schedule, a
 * PUT that changes the text or the channel, batches), so the record, the API and the pacing of
 * the worker always count the same.
 */
export function smsFieldsOf(channel: Channel | undefined, message: string | null | undefined): SmsFields | undefined {
  if (channel !== 'sms' || typeof message !== 'string') return undefined;
  const { encoding, segments } = smsSegments(message);
  return { encoding, segments };
}

/** Segments a stored SMS is paced by: its stored count, or, for a record stored before it had one, its text's. */
export function storedSegments(fields: Record<string, string>): number {
  const stored = Number(fields.segments);
  if (Number.isInteger(stored) && stored > 0) return stored;
  return Math.max(1, smsSegments(fields.message ?? '').segments);
}
