import { RECEIPT_STATUSES, type ReceiptStatus } from '@punctual/shared';
import type { ProviderReceipt } from '@punctual/store';
import type { InboundMessage } from './inbound.js';

/** The parameters of a form-encoded body, in order, a name sent twice kept twice. */
export function formPairs(raw: Buffer): [string, string][] {
  return [...new URLSearchParams(raw.toString('utf8'))];
}

/** The parameters by name (the first value of a name sent twice). */
export function formObject(pairs: readonly [string, string][]): Record<string, string> {
  const params: Record<string, string> = Object.create(null);
  for (const [name, value] of pairs) if (!(name in params)) params[name] = value;
  return params;
}

const TWILIO_RECEIPTS = new Set<string>(RECEIPT_STATUSES);

/** The receipt of a Twilio status callback; null for a status that is not one (queued, sending, accepted…). */
export function twilioReceipt(params: Record<string, string>, now: number): ProviderReceipt | null {
  const { MessageSid: sid, MessageStatus: status, ErrorCode: errorCode } = params;
  if (!sid || !status || !TWILIO_RECEIPTS.has(status)) return null;
  // Twilio's status callbacks carry no time of their own
  return { providerMessageId: sid, status: status as ReceiptStatus, at: now, ...(errorCode ? { errorCode } : {}) };
}

/** The message of Twilio's incoming-message webhook; `From: whatsapp:+…` is a WhatsApp one. */
export function twilioInbound(params: Record<string, string>): InboundMessage | null {
  const from = params.From;
  if (!from) return null;
  const whatsapp = from.startsWith('whatsapp:');
  return { channel: whatsapp ? 'whatsapp' : 'sms', from: whatsapp ? from.slice('whatsapp:'.length) : from, text: params.Body ?? '' };
}

const META_RECEIPTS = new Set(['sent', 'delivered', 'read', 'failed']);
/** Unix seconds from 2001 to 2286: anything else is not a time Meta would send. */
const UNIX_SECONDS = /^[0-9]{10}$/;

export interface MetaNotification {
  receipts: ProviderReceipt[];
  inbound: InboundMessage[];
}

/**
 * The statuses and inbound messages of a WhatsApp Cloud API notification
 * (`entry[].changes[].value.statuses[]` and `.messages[]`); anything else in it is ignored.
 */
export function metaNotification(body: unknown, now: number): MetaNotification {
  const found: MetaNotification = { receipts: [], inbound: [] };
  if (!isObject(body) || body.object !== 'whatsapp_business_account') return found;
  for (const entry of list(body.entry)) {
    for (const change of list(isObject(entry) ? entry.changes : undefined)) {
      const value = isObject(change) ? change.value : undefined;
      if (!isObject(value)) continue;
      for (const status of list(value.statuses)) {
        const receipt = isObject(status) ? metaReceipt(status, now) : null;
        if (receipt) found.receipts.push(receipt);
      }
      for (const message of list(value.messages)) {
        if (!isObject(message) || typeof message.from !== 'string' || message.from === '') continue;
        const text = isObject(message.text) && typeof message.text.body === 'string' ? message.text.body : '';
        found.inbound.push({ channel: 'whatsapp', from: message.from, text });
      }
    }
  }
  return found;
}

function metaReceipt(status: Record<string, unknown>, now: number): ProviderReceipt | null {
  if (typeof status.id !== 'string' || typeof status.status !== 'string' || !META_RECEIPTS.has(status.status)) return null;
  const timestamp = typeof status.timestamp === 'string' && UNIX_SECONDS.test(status.timestamp) ? Number(status.timestamp) * 1000 : now;
  const receipt: ProviderReceipt = { providerMessageId: status.id, status: status.status as ReceiptStatus, at: timestamp };
  const [error] = list(status.errors);
  if (isObject(error) && (typeof error.code === 'number' || typeof error.code === 'string')) receipt.errorCode = String(error.code);
  if (typeof status.biz_opaque_callback_data === 'string') receipt.messageId = status.biz_opaque_callback_data;
  return receipt;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
