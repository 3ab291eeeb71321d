import type { WhatsAppCloudConfig } from '../config.js';
import type { ChannelProvider, OutboundMessage, SendResult } from './provider.js';
import { isSuccess, parseJson, refusal, unreadableSuccess, type ErrorCodes, type ProviderHttp } from './provider-http.js';

/**
 * Graph API error codes worth retrying: 130429 (number's throughput) and 4 / 80007 (app or
 * account rate limits) slow the channel; 131056 (pair rate: too many messages to one user) slows
 * that user's messages; 131000 (something went wrong), 131016 / 133004 (service unavailable) and
 * 1 / 2 (unknown / service error) retry. Every other error (131026 undeliverable, 131047 outside
 * the 24 h window, 100 bad parameter…) is permanent.
 */
const META_CODES: ErrorCodes = {
  rateLimited: new Set([130429, 4, 80007]),
  recipientRateLimited: new Set([131056]),
  transient: new Set([131000, 131016, 133004, 1, 2]),
};

interface GraphError {
  code?: unknown;
  message?: unknown;
  error_data?: { details?: unknown };
}

/**
 * WhatsApp Cloud API, `POST {base}/{phone-number-id}/messages` with a Bearer token: a text
 * message, or a template (its variables become the body component's text parameters).
 */
export function createWhatsAppCloudProvider(config: WhatsAppCloudConfig, http: ProviderHttp): ChannelProvider {
  const url = `${config.baseUrl}/${encodeURIComponent(config.phoneNumberId)}/messages`;
  const headers = {
    authorization: `Bearer ${config.token}`,
    'content-type': 'application/json',
    accept: 'application/json',
  };

  return {
    name: `whatsapp cloud api (phone number id ${config.phoneNumberId})`,
    async send(message: OutboundMessage): Promise<SendResult> {
      const answer = await http.post(url, headers, JSON.stringify(requestBody(message)));
      const body = parseJson(answer.body) as { messages?: { id?: unknown }[]; error?: GraphError } | undefined;
      if (isSuccess(answer)) {
        const id = body?.messages?.[0]?.id;
        if (typeof id !== 'string' || id === '') throw unreadableSuccess(answer);
        return { providerMessageId: id };
      }
      throw refusal(answer, graphFailure(body?.error), META_CODES);
    },
  };
}

function requestBody(message: OutboundMessage) {
  // Meta returns biz_opaque_callback_data in the message's status webhooks: they name our message
  const base = { messaging_product: 'whatsapp', recipient_type: 'individual', to: message.recipient.replace(/^\+/, ''), biz_opaque_callback_data: message.id };
  const { template } = message;
  if (!template) return { ...base, type: 'text', text: { body: message.message ?? '', preview_url: false } };
  const variables = template.variables ?? [];
  return {
    ...base,
    type: 'template',
    template: {
      name: template.name,
      language: { code: template.language },
      ...(variables.length > 0
        ? { components: [{ type: 'body', parameters: variables.map((text) => ({ type: 'text', text })) }] }
        : {}),
    },
  };
}

/** Meta's message, with `error_data.details` when it says more than the title. */
function graphFailure(error: GraphError | undefined) {
  if (!error) return {};
  const code = typeof error.code === 'number' ? error.code : undefined;
  const title = typeof error.message === 'string' ? error.message : undefined;
  const details = typeof error.error_data?.details === 'string' ? error.error_data.details : undefined;
  return { code, message: details && title && details !== title ? `${title}: ${details}` : (title ?? details) };
}
