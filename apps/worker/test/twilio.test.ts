import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { loadConfig } from '../src/config.js';
import { createChannelRegistry } from '../src/channels/registry.js';
import { ProviderError, type OutboundMessage } from '../src/channels/provider.js';
import { createHttpAgent } from '../src/http-client.js';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import {
  TWILIO_AUTH,
  TWILIO_PATH,
  TWILIO_SERVICE_SID,
  TWILIO_WHATSAPP_FROM,
  twilioEnv,
  twilioError,
  twilioMessage,
} from '../../../test-support/providers.js';

let fake: FakeHttpServer;
let agent: Agent;

beforeAll(async () => {
  fake = await FakeHttpServer.start();
  agent = createHttpAgent({ timeoutMs: 2000 });
});
afterAll(async () => {
  await agent.close();
  await fake.close();
});

function providers(extra: Record<string, string> = {}, timeoutMs = '2000') {
  const config = loadConfig({ ...twilioEnv(fake.url, { TWILIO_WHATSAPP_FROM, ...extra }), PROVIDER_TIMEOUT_MS: timeoutMs });
  return createChannelRegistry(config, agent);
}

const sms: OutboundMessage = { id: '01J0000000000000000000000A', channel: 'sms', recipient: '5511999999999', message: 'Olá, 50% off & more: café?' };

/** Sends one message and returns the single request Twilio received for it. */
async function sendOne(message: OutboundMessage, extra: Record<string, string> = {}) {
  const before = fake.requests.length;
  const result = await providers(extra).get(message.channel)!.send(message);
  expect(fake.requests.length).toBe(before + 1);
  return { result, request: fake.requests[before]! };
}

function expectTwilioRequest(request: FakeHttpServer['requests'][number], body: string) {
  expect(request.method).toBe('POST');
  expect(request.path).toBe(TWILIO_PATH);
  expect(request.headers.authorization).toBe(TWILIO_AUTH);
  expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
  expect(request.body).toBe(body);
}

describe('Twilio provider', () => {
  it('sends an SMS from TWILIO_FROM to the E.164 number with its plus', async () => {
    fake.respondWith(() => ({ status: 201, body: twilioMessage('SM0123456789abcdef0123456789abcdef') }));
    const { result, request } = await sendOne(sms);
    expect(result).toEqual({ providerMessageId: 'SM0123456789abcdef0123456789abcdef', receiptLookup: true });
    expectTwilioRequest(request, 'To=%2B5511999999999&From=%2B15005550006&Body=Ol%C3%A1%2C+50%25+off+%26+more%3A+caf%C3%A9%3F');
  });

  it('names the status webhook as StatusCallback when PUBLIC_BASE_URL is set, without a query', async () => {
    fake.respondWith(() => ({ status: 201, body: twilioMessage('SM4') }));
    const { request } = await sendOne({ ...sms, message: 'Hi' }, { PUBLIC_BASE_URL: 'https://api.example.com/punctual/' });
    expectTwilioRequest(request, 'To=%2B5511999999999&From=%2B15005550006&Body=Hi&StatusCallback=https%3A%2F%2Fapi.example.com%2Fpunctual%2Fwebhooks%2Ftwilio%2Fstatus');
  });

  it('sends through the Messaging Service when TWILIO_MESSAGING_SERVICE_SID is set', async () => {
    fake.respondWith(() => ({ status: 201, body: twilioMessage('SM1') }));
    const { request } = await sendOne({ ...sms, recipient: '+15551234567', message: 'Hi' }, { TWILIO_MESSAGING_SERVICE_SID: TWILIO_SERVICE_SID });
    expectTwilioRequest(request, `To=%2B15551234567&MessagingServiceSid=${TWILIO_SERVICE_SID}&Body=Hi`);
  });

  it('sends WhatsApp text between whatsapp: addresses', async () => {
    fake.respondWith(() => ({ status: 201, body: twilioMessage('SM2') }));
    const { result, request } = await sendOne({ ...sms, channel: 'whatsapp', message: 'Hi there' });
    expect(result.providerMessageId).toBe('SM2');
    expectTwilioRequest(request, 'To=whatsapp%3A%2B5511999999999&From=whatsapp%3A%2B14155238886&Body=Hi+there');
  });

  it('sends a WhatsApp template as ContentSid and numbered ContentVariables', async () => {
    fake.respondWith(() => ({ status: 201, body: twilioMessage('SM3') }));
    const sid = `HX${'b'.repeat(32)}`;
    const { request } = await sendOne({ ...sms, channel: 'whatsapp', message: undefined, template: { name: sid, language: 'en_US', variables: ['Alex', '3pm'] } });
    expectTwilioRequest(
      request,
      `To=whatsapp%3A%2B5511999999999&From=whatsapp%3A%2B14155238886&ContentSid=${sid}&ContentVariables=%7B%221%22%3A%22Alex%22%2C%222%22%3A%223pm%22%7D`,
    );
    expect(new URLSearchParams(request.body).get('ContentVariables')).toBe('{"1":"Alex","2":"3pm"}');

    const plain = await sendOne({ ...sms, channel: 'whatsapp', message: undefined, template: { name: sid, language: 'en_US' } });
    expectTwilioRequest(plain.request, `To=whatsapp%3A%2B5511999999999&From=whatsapp%3A%2B14155238886&ContentSid=${sid}`);
  });

  it('refuses a template name that is not a Content SID without calling Twilio', async () => {
    const before = fake.requests.length;
    const error = await providers().get('whatsapp')!.send({ ...sms, channel: 'whatsapp', message: undefined, template: { name: 'appt_reminder', language: 'en_US' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ transient: false, message: expect.stringMatching(/^INVALID_TEMPLATE: /) });
    expect(fake.requests.length).toBe(before);
  });

  it.each([
    [400, 21211, "Invalid 'To' Phone Number"],
    [400, 21610, 'Attempt to send to unsubscribed recipient'],
    [400, 21614, "'To' number is not a valid mobile number"],
    [400, 63016, 'Failed to send freeform message because you are outside the allowed window'],
    [401, 20003, 'Authenticate'],
  ])('treats HTTP %i code %i as permanent, lastError "<code>: <message>"', async (status, code, message) => {
    fake.respondWith(() => twilioError(status, code, message));
    const error = (await providers().get('sms')!.send(sms).catch((e: unknown) => e)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ transient: false, rateLimited: false, message: `${code}: ${message}`, recipientOptedOut: code === 21610 });
  });

  it('treats 20429 (HTTP 429) as a rate limit, honouring Retry-After', async () => {
    fake.respondWith(() => ({ ...twilioError(429, 20429, 'Too Many Requests'), headers: { 'retry-after': '2' } }));
    const error = await providers().get('sms')!.send(sms).catch((e: unknown) => e);
    expect(error).toMatchObject({ transient: true, rateLimited: true, retryAfterMs: 2000, message: '20429: Too Many Requests' });
  });

  it('treats 5xx, non-JSON answers, refused connections and timeouts as transient', async () => {
    fake.respondWith(() => twilioError(503, 20503, 'Service Unavailable'));
    expect(await providers().get('sms')!.send(sms).catch((e: unknown) => e)).toMatchObject({ transient: true, rateLimited: false, message: '20503: Service Unavailable' });

    fake.respondWith(() => ({ status: 502, body: 'Bad Gateway' }));
    expect(await providers().get('sms')!.send(sms).catch((e: unknown) => e)).toMatchObject({ transient: true, message: 'HTTP_502: Bad Gateway' });

    fake.respondWith(() => ({ status: 200, hang: true }));
    expect(await providers({}, '300').get('sms')!.send(sms).catch((e: unknown) => e)).toMatchObject({ transient: true, message: 'TIMEOUT: no answer within 300 ms' });

    const closed = await FakeHttpServer.start();
    const url = closed.url;
    await closed.close();
    const registry = createChannelRegistry(loadConfig(twilioEnv(url)), agent);
    expect(await registry.get('sms')!.send(sms).catch((e: unknown) => e)).toMatchObject({ transient: true, message: expect.stringMatching(/^NETWORK: ECONNREFUSED/) });
  });
});
