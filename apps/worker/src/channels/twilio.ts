import type { Channel } from '@punctual/shared';
import type { TwilioConfig } from '../config.js';
import { ProviderError, type ChannelProvider, type OutboundMessage, type SendResult } from './provider.js';
import { isSuccess, parseJson, refusal, unreadableSuccess, type ErrorCodes, type ProviderHttp } from './provider-http.js';

/**
 * Twilio error codes that are worth retrying; every other 4xx (21211 invalid To, 21610
 * unsubscribed, 21614 not a mobile number, 63016 outside the WhatsApp window…) is permanent.
 */
const TWILIO_CODES: ErrorCodes = {
  rateLimited: new Set([20429]),
  transient: new Set([20500, 20503]),
  optedOut: new Set([21610]),
};

/** Content SID of a Twilio Content API template. */
const CONTENT_SID = /^HX[0-9a-fA-F]{32}$/;

/**
 * Twilio Programmable Messaging, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form
 * encoded, HTTP Basic. SMS goes from the Messaging Service or From number; WhatsApp from
 * `whatsapp:+…` to `whatsapp:+…`, templates as ContentSid + ContentVariables. With PUBLIC_BASE_URL
 * every send names our status webhook as its StatusCallback.
 */
export function createTwilioProvider(config: TwilioConfig, channel: Channel, http: ProviderHttp): ChannelProvider {
  const url = `${twilioMessagesUrl(config)}.json`;
  const headers = {
    authorization: twilioAuthHeader(config),
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  const sender: [string, string] =
    channel === 'whatsapp'
      ? ['From', config.whatsappFrom!]
      : config.messagingServiceSid
        ? ['MessagingServiceSid', config.messagingServiceSid]
        : ['From', config.from!];

  return {
    name: channel === 'whatsapp' ? `twilio (${config.whatsappFrom})` : `twilio (${sender[0]} ${sender[1]})`,
    async send(message: OutboundMessage): Promise<SendResult> {
      const to = `+${message.recipient.replace(/^\+/, '')}`;
      const form = new URLSearchParams();
      form.append('To', channel === 'whatsapp' ? `whatsapp:${to}` : to);
      form.append(...sender);
      appendContent(form, message);
      if (config.statusCallback) form.append('StatusCallback', config.statusCallback);
      const answer = await http.post(url, headers, form.toString());
      const body = parseJson(answer.body) as { sid?: unknown; code?: unknown; message?: unknown } | undefined;
      if (isSuccess(answer)) {
        if (typeof body?.sid !== 'string' || body.sid === '') throw unreadableSuccess(answer);
        return { providerMessageId: body.sid, receiptLookup: true };
      }
      throw refusal(answer, { code: numberOrUndefined(body?.code), message: typeof body?.message === 'string' ? body.message : undefined }, TWILIO_CODES);
    },
  };
}

/** The account's Message resources: `…/Messages.json` to send, `…/Messages/{Sid}.json` for one. */
export function twilioMessagesUrl({ baseUrl, accountSid }: Pick<TwilioConfig, 'baseUrl' | 'accountSid'>): string {
  return `${baseUrl}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages`;
}

/** HTTP Basic with the account SID and auth token, as every Twilio REST call takes it. */
export function twilioAuthHeader({ accountSid, authToken }: Pick<TwilioConfig, 'accountSid' | 'authToken'>): string {
  return `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
}

function appendContent(form: URLSearchParams, message: OutboundMessage) {
  const { template } = message;
  if (!template) {
    form.append('Body', message.message ?? '');
    return;
  }
  if (!CONTENT_SID.test(template.name)) {
    throw new ProviderError(`INVALID_TEMPLATE: Twilio sends templates by Content SID: the template name must be an HX… Content SID, got "${template.name}"`, { transient: false });
  }
  form.append('ContentSid', template.name);
  const variables = template.variables ?? [];
  if (variables.length > 0) {
    form.append('ContentVariables', JSON.stringify(Object.fromEntries(variables.map((value, i) => [String(i + 1), value]))));
  }
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
