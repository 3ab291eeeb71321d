import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import { CloneType, Type } from '@sinclair/typebox';
import { ErrorResponse, WEBHOOK_PATHS } from '@punctual/shared';
import type { ProviderReceipt } from '@punctual/store';
import { secretCheck } from '../api-keys.js';
import type { WebhookConfig } from '../config.js';
import { InvalidSignature, UnsupportedMediaType } from '../errors.js';
import { bindLog } from '../logger.js';
import { handleInboundMessage } from '../webhooks/inbound.js';
import { formObject, formPairs, metaNotification, twilioInbound, twilioReceipt } from '../webhooks/payloads.js';
import { isMetaSignature, isTwilioSignature } from '../webhooks/signatures.js';

/** Twilio's form posts are small: a status callback is about 1 KB, an incoming message with media a few KB. */
const TWILIO_BODY_LIMIT = 64 * 1024;
/** Meta batches many statuses in one POST and documents payloads of up to 3 MB: a smaller limit would refuse (and so lose) real ones. */
const META_BODY_LIMIT = 3 * 1024 * 1024;
/** Receipts of one Meta notification stored at once. */
const META_CONCURRENCY = 32;
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

const FORM = 'application/x-www-form-urlencoded';

const error = (status: 403 | 413 | 415 | 503, description: string) => ({ [status]: CloneType(ErrorResponse, { description }) });
const REFUSALS = {
  404: CloneType(ErrorResponse, { description: 'The webhook is not configured on this API (its secret is unset)' }),
  ...error(403, 'INVALID_SIGNATURE: the provider signature is missing or does not match; nothing was changed'),
  ...error(415, 'Not the content type the provider sends'),
  ...error(503, 'Redis unavailable: nothing was stored, the provider retries'),
};
const ACKNOWLEDGED = { description: 'Stored (also for an unknown message or a status that is not a receipt: nothing changes then)', type: 'null' } as const;

const TwilioSignatureHeader = Type.Object({
  'x-twilio-signature': Type.Optional(Type.String({ description: 'Base64 HMAC-SHA1 (TWILIO_AUTH_TOKEN) of PUBLIC_BASE_URL + path + query, then each parameter name and value sorted by name' })),
});
const TwilioStatusBody = Type.Object(
  {
    MessageSid: Type.String({ description: "The message's Twilio SID: its providerMessageId" }),
    MessageStatus: Type.String({ description: 'sent, delivered, read, undelivered or failed become the receipt; any other status changes nothing' }),
    ErrorCode: Type.Optional(Type.String({ description: 'Twilio error code of an undelivered or failed message (e.g. 30003)' })),
  },
  { additionalProperties: true, description: "Twilio's status callback, form encoded (every parameter Twilio sends is signed)" },
);
const TwilioInboundBody = Type.Object(
  {
    From: Type.String({ description: 'The sender: +E.164, or whatsapp:+E.164 for WhatsApp' }),
    To: Type.Optional(Type.String()),
    Body: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: "Twilio's incoming-message webhook, form encoded" },
);
const MetaSignatureHeader = Type.Object({
  'x-hub-signature-256': Type.Optional(Type.String({ description: 'sha256=<hex HMAC-SHA256 (WHATSAPP_APP_SECRET) of the raw body bytes>' })),
});
const MetaNotificationBody = Type.Object(
  {
    object: Type.Optional(Type.String({ description: 'whatsapp_business_account' })),
    entry: Type.Optional(Type.Array(Type.Unknown())),
  },
  {
    additionalProperties: true,
    description:
      'WhatsApp Cloud API notification: entry[].changes[].value.statuses[] (id = wamid, status, timestamp, errors[].code, biz_opaque_callback_data) become receipts; value.messages[] (from, text.body) are inbound messages',
  },
);
const VerifyQuery = Type.Object(
  {
    'hub.mode': Type.Optional(Type.String({ maxLength: 64, description: 'subscribe' })),
    'hub.verify_token': Type.Optional(Type.String({ maxLength: 1024, description: 'WHATSAPP_VERIFY_TOKEN' })),
    'hub.challenge': Type.Optional(Type.String({ maxLength: 1024, description: 'Echoed back when the token matches' })),
  },
  { additionalProperties: true },
);

/**
 * The providers' webhooks (Twilio status callbacks and incoming messages, Meta's WhatsApp
 * notifications). Public: the provider's signature over what it sent is the credential, so each
 * context keeps the raw body (form or JSON bytes) until the signature has been checked. A route
 * whose secret is unset answers 404, like a route that does not exist.
 */
const webhooks: FastifyPluginAsync<WebhookConfig> = async (app, config) => {
  const twilio = Boolean(config.publicBaseUrl && config.twilioAuthToken);
  app.log.info({ twilio, whatsapp: Boolean(config.whatsappAppSecret), whatsappVerify: Boolean(config.whatsappVerifyToken) }, 'provider webhooks');
  if (config.twilioAuthToken && !config.publicBaseUrl) app.log.warn('TWILIO_AUTH_TOKEN is set without PUBLIC_BASE_URL: the Twilio webhooks stay off (Twilio signs the URL it was given)');
  await app.register(twilioWebhooks, config);
  await app.register(whatsappWebhooks, config);
};

/** A route that answers 404 (as an unknown one would) unless `configured`. */
function unlessConfigured(configured: boolean) {
  return async (_request: FastifyRequest, reply: FastifyReply) => {
    if (!configured) {
      reply.callNotFound();
      return reply;
    }
  };
}

/** The body stays the bytes as received until its signature is checked; another content type is a 415. */
function keepRawBody(app: FastifyInstance, contentType: string) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(contentType, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.addContentTypeParser('*', (_request, _payload, done) => done(new UnsupportedMediaType(contentType), undefined));
}

const rawBody = (request: FastifyRequest): Buffer => (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));

const twilioWebhooks: FastifyPluginAsync<WebhookConfig> = async (app, { publicBaseUrl, twilioAuthToken }) => {
  keepRawBody(app, FORM);
  const onRequest = unlessConfigured(Boolean(publicBaseUrl && twilioAuthToken));
  // Twilio signs the URL it was given: ours from PUBLIC_BASE_URL, never from the request's Host
  const preValidation = async (request: FastifyRequest) => {
    const pairs = formPairs(rawBody(request));
    const signature = request.headers['x-twilio-signature'];
    if (!isTwilioSignature(typeof signature === 'string' ? signature : undefined, twilioAuthToken!, publicBaseUrl + request.url, pairs)) {
      throw new InvalidSignature('X-Twilio-Signature');
    }
    request.body = formObject(pairs);
  };
  const schema = { tags: ['webhooks'], security: [], consumes: [FORM], headers: TwilioSignatureHeader };
  /** What both Twilio webhooks share: no API key, a form body of bounded size, Twilio's signature. */
  const signedByTwilio = { config: { public: true }, bodyLimit: TWILIO_BODY_LIMIT, onRequest, preValidation };

  app.post(
    WEBHOOK_PATHS.twilioStatus,
    {
      ...signedByTwilio,
      schema: {
        ...schema,
        summary: 'Twilio status callback: the receipt of a message',
        description: `Twilio posts here when PUBLIC_BASE_URL is set (every send carries StatusCallback=<PUBLIC_BASE_URL>${WEBHOOK_PATHS.twilioStatus}). Needs TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL.`,
        body: TwilioStatusBody,
        response: { 200: ACKNOWLEDGED, ...REFUSALS },
      },
    },
    async (request, reply) => {
      const receipt = twilioReceipt(request.body as Record<string, string>, Date.now());
      if (receipt) await store(app, reply, receipt);
      return reply.code(200).send();
    },
  );

  app.post(
    WEBHOOK_PATHS.twilioInbound,
    {
      ...signedByTwilio,
      schema: {
        ...schema,
        summary: "Twilio's incoming-message webhook",
        description: 'Point a number\'s (or Messaging Service\'s) "A message comes in" webhook here. Answers an empty TwiML response. Needs TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL.',
        body: TwilioInboundBody,
        response: { 200: { description: 'Empty TwiML: no reply is sent', content: { 'text/xml': { schema: Type.String() } } }, ...REFUSALS },
      },
    },
    async (request, reply) => {
      const message = twilioInbound(request.body as Record<string, string>);
      if (message) await handleInboundMessage(app, message);
      return reply.code(200).type('text/xml').send(EMPTY_TWIML);
    },
  );
};

const whatsappWebhooks: FastifyPluginAsync<WebhookConfig> = async (app, { whatsappAppSecret, whatsappVerifyToken }) => {
  keepRawBody(app, 'application/json');
  // unset: the route answers 404 before anything is compared
  const isVerifyToken = secretCheck(whatsappVerifyToken ?? '');

  app.get(
    WEBHOOK_PATHS.whatsapp,
    {
      config: { public: true },
      onRequest: unlessConfigured(Boolean(whatsappVerifyToken)),
      schema: {
        tags: ['webhooks'],
        security: [],
        summary: "Meta's subscription check",
        description: 'Answers hub.challenge when hub.mode is subscribe and hub.verify_token is WHATSAPP_VERIFY_TOKEN. Needs WHATSAPP_VERIFY_TOKEN.',
        querystring: VerifyQuery,
        response: {
          200: { description: 'The challenge, as sent', content: { 'text/plain': { schema: Type.String() } } },
          404: REFUSALS[404],
          ...error(403, 'INVALID_SIGNATURE: hub.verify_token is not WHATSAPP_VERIFY_TOKEN'),
        },
      },
    },
    async (request, reply) => {
      const query = request.query as Record<string, string | undefined>;
      const challenge = query['hub.challenge'];
      if (query['hub.mode'] !== 'subscribe' || challenge === undefined || !isVerifyToken(query['hub.verify_token'])) {
        throw new InvalidSignature('hub.verify_token');
      }
      return reply.type('text/plain; charset=utf-8').send(challenge);
    },
  );

  app.post(
    WEBHOOK_PATHS.whatsapp,
    {
      config: { public: true },
      bodyLimit: META_BODY_LIMIT,
      onRequest: unlessConfigured(Boolean(whatsappAppSecret)),
      // the HMAC is over the bytes as received: checked before they are even parsed
      preValidation: async (request) => {
        const raw = rawBody(request);
        const signature = request.headers['x-hub-signature-256'];
        if (!isMetaSignature(typeof signature === 'string' ? signature : undefined, whatsappAppSecret!, raw)) {
          throw new InvalidSignature('X-Hub-Signature-256');
        }
        try {
          request.body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
        }
      },
      schema: {
        tags: ['webhooks'],
        security: [],
        summary: 'WhatsApp Cloud API notifications: receipts and inbound messages',
        description: `Subscribe the app's webhook (field "messages") to PUBLIC_BASE_URL${WEBHOOK_PATHS.whatsapp}. Needs WHATSAPP_APP_SECRET. Bodies up to 3 MB.`,
        headers: MetaSignatureHeader,
        body: MetaNotificationBody,
        response: { 200: ACKNOWLEDGED, ...REFUSALS, ...error(413, 'Body larger than 3 MB') },
      },
    },
    async (request, reply) => {
      const { receipts, inbound } = metaNotification(request.body, Date.now());
      for (let i = 0; i < receipts.length; i += META_CONCURRENCY) {
        await Promise.all(receipts.slice(i, i + META_CONCURRENCY).map((receipt) => app.scheduler.recordReceipt(receipt, Date.now())));
      }
      for (const message of inbound) await handleInboundMessage(app, message);
      return reply.code(200).send();
    },
  );
};

/** Stores a receipt; the request's log line names the message it changed. */
async function store(app: FastifyInstance, reply: FastifyReply, receipt: ProviderReceipt) {
  const result = await app.scheduler.recordReceipt(receipt, Date.now());
  if (result.outcome === 'applied') bindLog(reply, { messageId: result.record.id, tenant: result.tenant });
  reply.request.log.debug({ receipt: receipt.status, outcome: result.outcome }, 'receipt');
}

export default webhooks;
