/** Provider webhooks as Twilio and Meta send them: the same parameters, bodies and signatures. */
import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import twilio from 'twilio';
import { TWILIO_SID, TWILIO_TOKEN } from './providers.js';

/** What the API is reached at, as the providers were told (never the test's 127.0.0.1 address). */
export const PUBLIC_BASE_URL = 'https://punctual.example.com';
export const WHATSAPP_APP_SECRET = 'meta-app-secret-0123456789abcdef';
export const WHATSAPP_VERIFY_TOKEN = 'meta-verify-token-5c1e';

/** The API's webhook configuration, matching test-support/providers.ts's Twilio account. */
export function webhookEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PUBLIC_BASE_URL,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    WHATSAPP_APP_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    ...extra,
  };
}

let sids = 0;

/** A fresh Twilio Message SID (SM + 32 hex). */
export function newTwilioSid(): string {
  return `SM${Date.now().toString(16)}${(++sids).toString(16).padStart(8, '0')}`.padEnd(34, '0');
}

/** A Twilio status callback's parameters, as Twilio posts them for an SMS. */
export function twilioStatusParams(sid: string, status: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ApiVersion: '2010-04-01',
    AccountSid: TWILIO_SID,
    MessageSid: sid,
    SmsSid: sid,
    MessageStatus: status,
    SmsStatus: status,
    From: '+15005550006',
    To: '+5511999999999',
    ...extra,
  };
}

/** Twilio's signature of a POST to `url`, computed by Twilio's own library. */
export function twilioSignatureOf(url: string, params: Record<string, string | string[]>, authToken = TWILIO_TOKEN): string {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

/** The form body Twilio sends: every parameter form-encoded. */
export function formBody(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

/** POSTs a Twilio webhook to `path` (with its query), signed for PUBLIC_BASE_URL unless `signature` says otherwise. */
export function postTwilio(app: FastifyInstance, path: string, params: Record<string, string>, options: { signature?: string | null; body?: string; headers?: Record<string, string> } = {}) {
  const signature = options.signature === undefined ? twilioSignatureOf(`${PUBLIC_BASE_URL}${path}`, params) : options.signature;
  return app.inject({
    method: 'POST',
    url: path,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'TwilioProxy/1.1',
      ...(signature === null ? {} : { 'x-twilio-signature': signature }),
      ...options.headers,
    },
    payload: options.body ?? formBody(params),
  });
}

/** Meta's X-Hub-Signature-256 of raw body bytes. */
export function metaSignatureOf(raw: string | Buffer, secret = WHATSAPP_APP_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/** POSTs a Meta notification (raw JSON text, as Meta serializes it), signed unless `signature` says otherwise. */
export function postMeta(app: FastifyInstance, raw: string, options: { signature?: string | null; headers?: Record<string, string> } = {}) {
  const signature = options.signature === undefined ? metaSignatureOf(raw) : options.signature;
  return app.inject({
    method: 'POST',
    url: '/webhooks/whatsapp',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'facebookexternalua',
      ...(signature === null ? {} : { 'x-hub-signature-256': signature }),
      ...options.headers,
    },
    payload: raw,
  });
}

export interface MetaStatus {
  id: string;
  status: string;
  /** Unix seconds, as a string. */
  timestamp?: string;
  biz_opaque_callback_data?: string;
  errors?: { code: number; title: string; message?: string }[];
}

/** A WhatsApp Cloud API notification with these statuses and inbound messages. */
export function metaNotification({ statuses = [], messages = [] }: { statuses?: MetaStatus[]; messages?: unknown[] }) {
  const value: Record<string, unknown> = {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550001111', phone_number_id: '106540352242922' },
  };
  if (statuses.length > 0) {
    value.statuses = statuses.map((s) => ({
      recipient_id: '5511999999999',
      timestamp: String(Math.floor(Date.now() / 1000)),
      conversation: { id: 'a75d17ad06104c51166f948319b03c6a', origin: { type: 'utility' } },
      pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
      ...s,
    }));
  }
  if (messages.length > 0) {
    value.contacts = [{ profile: { name: 'Alex' }, wa_id: '5511999999999' }];
    value.messages = messages;
  }
  return { object: 'whatsapp_business_account', entry: [{ id: '102290129340398', changes: [{ value, field: 'messages' }] }] };
}
