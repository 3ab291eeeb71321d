import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { loadConfig } from '../src/config.js';
import { createChannelRegistry } from '../src/channels/registry.js';
import type { OutboundMessage } from '../src/channels/provider.js';
import { createHttpAgent } from '../src/http-client.js';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import { WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_TOKEN, twilioEnv, whatsAppCloudEnv } from '../../../test-support/providers.js';

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

/** The Cloud API wins over Twilio's WhatsApp sender when both are configured. */
const provider = () =>
  createChannelRegistry(loadConfig({ ...whatsAppCloudEnv(`${fake.url}/v21.0`), ...twilioEnv(fake.url, { TWILIO_WHATSAPP_FROM: '+14155238886' }) }), agent).get('whatsapp')!;

const accepted = (id: string) => ({
  status: 200,
  body: { messaging_product: 'whatsapp', contacts: [{ input: '5511999999999', wa_id: '5511999999999' }], messages: [{ id }] },
});

const graphError = (status: number, code: number, message: string, details?: string) => ({
  status,
  body: { error: { message, type: 'OAuthException', code, ...(details ? { error_data: { messaging_product: 'whatsapp', details } } : {}), fbtrace_id: 'AbCdEf' } },
});

const text: OutboundMessage = { id: '01J0000000000000000000000B', channel: 'whatsapp', recipient: '+5511999999999', message: 'Olá "Alex" <b>' };

async function sendOne(message: OutboundMessage) {
  const before = fake.requests.length;
  const result = await provider().send(message);
  expect(fake.requests.length).toBe(before + 1);
  const request = fake.requests[before]!;
  expect(request.method).toBe('POST');
  expect(request.path).toBe(`/v21.0/${WHATSAPP_PHONE_NUMBER_ID}/messages`);
  expect(request.headers.authorization).toBe(`Bearer ${WHATSAPP_TOKEN}`);
  expect(request.headers['content-type']).toBe('application/json');
  return { result, body: request.body };
}

describe('WhatsApp Cloud API provider', () => {
  it('sends text to the number as digits, without link previews', async () => {
    fake.respondWith(() => accepted('wamid.HBgLNTUxMTk5OTk5OTk5FQIAERgSQUFBQUFBQUFBQUFBQUFBQUFBAA=='));
    const { result, body } = await sendOne(text);
    expect(result).toEqual({ providerMessageId: 'wamid.HBgLNTUxMTk5OTk5OTk5FQIAERgSQUFBQUFBQUFBQUFBQUFBQUFBAA==' });
    // Meta returns biz_opaque_callback_data in the message's status webhooks: they name the message
    expect(body).toBe(
      '{"messaging_product":"whatsapp","recipient_type":"individual","to":"5511999999999","biz_opaque_callback_data":"01J0000000000000000000000B","type":"text","text":{"body":"Olá \\"Alex\\" <b>","preview_url":false}}',
    );
  });

  it('sends a template with its variables as body text parameters', async () => {
    fake.respondWith(() => accepted('wamid.T1'));
    const { body } = await sendOne({ ...text, message: undefined, template: { name: 'appt_reminder', language: 'pt_BR', variables: ['Alex', '15:00'] } });
    expect(body).toBe(
      '{"messaging_product":"whatsapp","recipient_type":"individual","to":"5511999999999","biz_opaque_callback_data":"01J0000000000000000000000B","type":"template",' +
        '"template":{"name":"appt_reminder","language":{"code":"pt_BR"},' +
        '"components":[{"type":"body","parameters":[{"type":"text","text":"Alex"},{"type":"text","text":"15:00"}]}]}}',
    );
  });

  it('omits components for a template without variables', async () => {
    fake.respondWith(() => accepted('wamid.T2'));
    const { body } = await sendOne({ ...text, message: undefined, template: { name: 'hello_world', language: 'en_US', variables: [] } });
    expect(body).toBe(
      '{"messaging_product":"whatsapp","recipient_type":"individual","to":"5511999999999","biz_opaque_callback_data":"01J0000000000000000000000B","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}',
    );
  });

  it.each([
    [400, 131026, 'Message undeliverable', undefined],
    [400, 131047, 'Re-engagement message', 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.'],
    [400, 100, 'Invalid parameter', undefined],
  ])('treats HTTP %i code %i as permanent', async (status, code, message, details) => {
    fake.respondWith(() => graphError(status, code, message, details));
    const error = await provider().send(text).catch((e: unknown) => e);
    expect(error).toMatchObject({ transient: false, message: details ? `${code}: ${message}: ${details}` : `${code}: ${message}` });
  });

  it.each([
    [400, 131056, '(Business Account, Consumer Account) pair rate limit hit', false, true],
    [500, 131000, 'Something went wrong', false, false],
    [400, 130429, 'Rate limit hit', true, false],
    [429, 80007, 'Rate limit issues', true, false],
  ])('treats HTTP %i code %i as transient (channel rate limit: %s, recipient rate limit: %s)', async (status, code, message, rateLimited, recipientRateLimited) => {
    fake.respondWith(() => graphError(status, code, message));
    const error = await provider().send(text).catch((e: unknown) => e);
    expect(error).toMatchObject({ transient: true, rateLimited, recipientRateLimited, message: `${code}: ${message}` });
  });

  it('refuses a success without a message id as a permanent error (it may have been sent)', async () => {
    fake.respondWith(() => ({ status: 200, body: { messaging_product: 'whatsapp' } }));
    expect(await provider().send(text).catch((e: unknown) => e)).toMatchObject({ transient: false, message: expect.stringMatching(/^INVALID_RESPONSE: /) });
  });
});
