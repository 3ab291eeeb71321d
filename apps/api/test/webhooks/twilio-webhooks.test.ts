import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import twilio from 'twilio';
import type { MessageRecord } from '@punctual/shared';
import { buildTestApi, fingerprint } from '../helpers.js';
import { FeedClient } from '../ws/feed-client.js';
import { twilioSignature } from '../../src/webhooks/signatures.js';
import { loadConfig } from '../../src/config.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { TWILIO_TOKEN } from '../../../../test-support/providers.js';
import {
  PUBLIC_BASE_URL,
  WHATSAPP_VERIFY_TOKEN,
  formBody,
  newTwilioSid,
  postTwilio,
  twilioSignatureOf,
  twilioStatusParams,
  webhookEnv,
} from '../../../../test-support/webhooks.js';

const STATUS = '/webhooks/twilio/status';
const prefix = uniquePrefix('webhooks-twilio');
let app: FastifyInstance;
let redis: Redis;
let feed: FeedClient;

beforeAll(async () => {
  app = await buildTestApi(prefix, { ...webhookEnv(), QUEUE_PARTITIONS: '3' });
  redis = new Redis(redisUrl());
  feed = await FeedClient.inject(app, '/ws');
});
afterAll(async () => {
  await feed?.close();
  await app?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
});

/** A message Twilio accepted just now (scheduled, claimed and delivered through the real scheduler). */
async function delivered(over: { channel?: 'sms' | 'whatsapp'; callbackUrl?: string } = {}): Promise<MessageRecord> {
  const now = Date.now();
  const result = await app.scheduler.schedule('default', { recipient: '+5511999999999', channel: 'sms', sendAt: now, message: 'hi', ...over }, now);
  if (!result.ok) throw new Error(result.reason);
  expect((await app.scheduler.claim(result.record.id, now)).outcome).toBe('claimed');
  const record = await app.scheduler.deliver(result.record.id, Date.now(), newTwilioSid(), 3);
  return record!;
}

const get = async (id: string): Promise<MessageRecord> => (await app.inject({ method: 'GET', url: `/messages/${id}` })).json().data;

describe('the X-Twilio-Signature check', () => {
  it('takes PUBLIC_BASE_URL without its trailing slash, and refuses one that is no http(s) URL without quoting it', () => {
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://api.example.com/punctual/' }).webhooks.publicBaseUrl).toBe('https://api.example.com/punctual');
    for (const bad of ['hooks.acme.test', 'https://hooks.acme.test/?token=s3cret', 'ftp://hooks.acme.test']) {
      expect(() => loadConfig({ PUBLIC_BASE_URL: bad })).toThrow(/^Invalid configuration: PUBLIC_BASE_URL must be the http\(s\) URL providers reach this API at/);
      expect(() => loadConfig({ PUBLIC_BASE_URL: bad })).not.toThrow(bad);
    }
  });

  it('agrees with Twilio’s own library, including names sent twice and characters that need encoding', () => {
    const url = `${PUBLIC_BASE_URL}${STATUS}?tenant=a&x=%20y`;
    const params = { MessageSid: 'SM1', Body: 'Olá & café + 100% 👍', MediaUrl0: 'https://api.twilio.com/x?y=1', b: 'z' };
    expect(twilioSignature(TWILIO_TOKEN, url, Object.entries(params))).toBe(twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params));
    const pairs: [string, string][] = [['To', '+1'], ['A', '2'], ['A', '1'], ['A', '2']];
    expect(twilioSignature(TWILIO_TOKEN, url, pairs)).toBe(twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, { To: '+1', A: ['2', '1', '2'] }));
  });

  it('accepts a signed status callback whatever Host the request came through, and answers 2xx with no API key', async () => {
    const record = await delivered();
    const response = await postTwilio(app, STATUS, twilioStatusParams(record.providerMessageId!, 'sent'), { headers: { host: 'internal-lb:8080' } });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('');
    expect((await get(record.id)).receipt).toMatchObject({ status: 'sent' });
  });

  it('refuses bad, missing, wrongly keyed or Host-derived signatures and a one-byte change of the body with 403, changing nothing', async () => {
    const record = await delivered();
    const params = twilioStatusParams(record.providerMessageId!, 'delivered');
    const body = formBody(params);
    const before = await fingerprint(redis, prefix);
    const refusals = [
      await postTwilio(app, STATUS, params, { signature: null }),
      await postTwilio(app, STATUS, params, { signature: '' }),
      await postTwilio(app, STATUS, params, { signature: 'bm90IGEgc2lnbmF0dXJl' }),
      await postTwilio(app, STATUS, params, { signature: twilioSignatureOf(`${PUBLIC_BASE_URL}${STATUS}`, params, 'another-token') }),
      // what a verifier trusting the Host header would have accepted
      await postTwilio(app, STATUS, params, { signature: twilioSignatureOf(`http://localhost:80${STATUS}`, params) }),
      // signed for the path without the query it was sent with
      await postTwilio(app, `${STATUS}?retry=1`, params, { signature: twilioSignatureOf(`${PUBLIC_BASE_URL}${STATUS}`, params) }),
      // one byte of the body changed after signing: delivered → delivereD
      await postTwilio(app, STATUS, params, { body: body.replace('MessageStatus=delivered', 'MessageStatus=delivereD') }),
      // a parameter added after signing
      await postTwilio(app, STATUS, params, { body: `${body}&ErrorCode=30003` }),
    ];
    for (const response of refusals) {
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({
        statusCode: 403,
        code: 'INVALID_SIGNATURE',
        error: 'Forbidden',
        message: 'X-Twilio-Signature is missing or does not match this request',
      });
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('signs the path and query exactly as received, and the URL with or without its default port', async () => {
    const record = await delivered();
    const params = twilioStatusParams(record.providerMessageId!, 'sent');
    expect((await postTwilio(app, `${STATUS}?source=twilio&n=1`, params)).statusCode).toBe(200);
    const withPort = twilioSignatureOf(`https://punctual.example.com:443${STATUS}`, twilioStatusParams(record.providerMessageId!, 'delivered'));
    expect((await postTwilio(app, STATUS, twilioStatusParams(record.providerMessageId!, 'delivered'), { signature: withPort })).statusCode).toBe(200);
    expect((await get(record.id)).receipt?.status).toBe('delivered');
  });
});

describe('receipts from Twilio status callbacks', () => {
  it('stores each receipt once, publishes messageReceipt, and moves only forward', async () => {
    const record = await delivered();
    const sid = record.providerMessageId!;
    const post = (status: string, extra: Record<string, string> = {}) => postTwilio(app, STATUS, twilioStatusParams(sid, status, extra));

    const before = Date.now();
    expect((await post('delivered')).statusCode).toBe(200);
    const afterDelivered = await get(record.id);
    expect(afterDelivered).toEqual({ ...record, receipt: { status: 'delivered', at: afterDelivered.receipt!.at }, version: record.version + 1, updatedAt: afterDelivered.updatedAt });
    expect(Date.parse(afterDelivered.receipt!.at)).toBeGreaterThanOrEqual(before);
    const frame = await feed.waitForEvent('messageReceipt', record.id);
    expect(frame.data).toEqual(afterDelivered);

    // WhatsApp-only read after delivered moves on; a late delivered and sent, and a duplicate, change nothing
    expect((await post('read')).statusCode).toBe(200);
    await feed.waitFor((f) => f.event === 'messageReceipt' && f.data?.receipt?.status === 'read' && f.data.id === record.id);
    const afterRead = await get(record.id);
    const unchanged = await fingerprint(redis, prefix);
    for (const status of ['delivered', 'sent', 'read', 'undelivered']) expect((await post(status, { ErrorCode: '30003' })).statusCode).toBe(200);
    expect(await fingerprint(redis, prefix)).toEqual(unchanged);
    expect(await get(record.id)).toEqual(afterRead);
    expect(feed.eventsOf(record.id).filter((e) => e === 'messageReceipt')).toHaveLength(2);
  });

  it('keeps a final receipt with its error code, and takes no other status for a receipt', async () => {
    const record = await delivered();
    const sid = record.providerMessageId!;
    const unchanged = await fingerprint(redis, prefix);
    for (const status of ['queued', 'sending', 'accepted', 'scheduled', 'canceled', 'partially_delivered', 'Delivered']) {
      expect((await postTwilio(app, STATUS, twilioStatusParams(sid, status))).statusCode).toBe(200);
    }
    expect(await fingerprint(redis, prefix)).toEqual(unchanged);

    expect((await postTwilio(app, STATUS, twilioStatusParams(sid, 'undelivered', { ErrorCode: '30003' }))).statusCode).toBe(200);
    expect((await postTwilio(app, STATUS, twilioStatusParams(sid, 'delivered'))).statusCode).toBe(200);
    expect((await get(record.id)).receipt).toMatchObject({ status: 'undelivered', errorCode: '30003' });
  });

  it('acknowledges an unknown MessageSid and changes nothing', async () => {
    const before = await fingerprint(redis, prefix);
    for (const sid of [newTwilioSid(), 'SM-not-ours', 'x'.repeat(300)]) {
      expect((await postTwilio(app, STATUS, twilioStatusParams(sid, 'delivered'))).statusCode).toBe(200);
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('finds messages of every partition', async () => {
    const seen = new Set<number>();
    while (seen.size < 3) {
      const record = await delivered({ channel: 'whatsapp' });
      expect((await postTwilio(app, STATUS, twilioStatusParams(record.providerMessageId!, 'read'))).statusCode).toBe(200);
      expect((await get(record.id)).receipt?.status).toBe('read');
      seen.add(app.store.keys.partitionOf(record.id));
    }
  });

  it('applies a receipt that arrived before the delivery was recorded, once the deliver transition runs', async () => {
    const now = Date.now();
    const result = await app.scheduler.schedule('default', { recipient: '5511999999999', channel: 'sms', sendAt: now, message: 'race' }, now);
    if (!result.ok) throw new Error(result.reason);
    await app.scheduler.claim(result.record.id, now);
    const sid = newTwilioSid();
    // Twilio answered the send and already reports; our deliver transition has not run yet
    expect((await postTwilio(app, STATUS, twilioStatusParams(sid, 'sent'))).statusCode).toBe(200);
    expect((await get(result.record.id)).receipt).toBeUndefined();
    await app.scheduler.deliver(result.record.id, Date.now(), sid, 3);
    expect((await get(result.record.id)).receipt?.status).toBe('sent');
    await feed.waitForEvent('messageReceipt', result.record.id);
    expect(feed.eventsOf(result.record.id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered', 'messageReceipt']);
  });

  it('queues a messageReceipt callback for a message with a callbackUrl', async () => {
    const record = await delivered({ callbackUrl: 'https://example.com/hooks/punctual' });
    expect((await postTwilio(app, STATUS, twilioStatusParams(record.providerMessageId!, 'delivered'))).statusCode).toBe(200);
    const now = await get(record.id);
    const job = await app.scheduler.callbacks.of(record.id).getJob(`${record.id}-v${now.version}`);
    expect(job?.data).toEqual({ event: 'messageReceipt', tenant: 'default', record: now });
  });

  it('lists delivered messages by receipt and counts receipts in /metrics', async () => {
    const record = await delivered();
    await postTwilio(app, STATUS, twilioStatusParams(record.providerMessageId!, 'undelivered', { ErrorCode: '30005' }));
    const page = (await app.inject({ method: 'GET', url: '/delivered?receipt=undelivered&channel=sms' })).json();
    expect(page.messages.map((m: MessageRecord) => m.id)).toContain(record.id);
    expect(page.messages.every((m: MessageRecord) => m.receipt?.status === 'undelivered')).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/delivered?receipt=opened' })).statusCode).toBe(400);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^punctual_receipts_total\{status="undelivered",channel="sms"\} [1-9]/m);
    expect(metrics).toMatch(/^punctual_receipts_total\{status="read",channel="whatsapp"\} [1-9]/m);
    expect(metrics).toMatch(/^punctual_receipt_latency_seconds_bucket\{status="undelivered",le="\+Inf"\} [1-9]/m);
    expect(metrics).toMatch(/^punctual_receipt_latency_seconds_count\{status="delivered"\} [1-9]/m);
  });
});

describe('Twilio incoming messages', () => {
  it('answers an empty TwiML response to a signed incoming message, SMS or WhatsApp', async () => {
    const inbound = (from: string) => ({ AccountSid: 'AC1', ApiVersion: '2010-04-01', Body: 'STOP', From: from, MessageSid: newTwilioSid(), NumMedia: '0', To: '+15005550006' });
    for (const from of ['+5511988887777', 'whatsapp:+5511988887777']) {
      const response = await postTwilio(app, '/webhooks/twilio/inbound', inbound(from));
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/xml/);
      expect(response.body).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');
    }
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^punctual_inbound_messages_total\{channel="sms"\} 1$/m);
    expect(metrics).toMatch(/^punctual_inbound_messages_total\{channel="whatsapp"\} 1$/m);
    expect((await postTwilio(app, '/webhooks/twilio/inbound', inbound('+5511988887777'), { signature: null })).statusCode).toBe(403);
  });

  it('refuses bodies that are not form encoded and larger than 64 KB', async () => {
    const json = await app.inject({ method: 'POST', url: STATUS, headers: { 'content-type': 'application/json' }, payload: '{"MessageSid":"SM1"}' });
    expect(json.statusCode).toBe(415);
    expect(json.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Body must be application/x-www-form-urlencoded' });
    const huge = await postTwilio(app, STATUS, { Body: 'x'.repeat(70_000) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'Body is larger than 65536 bytes' });
  });
});

describe('webhooks on an API with keys', () => {
  it('take no API key, while the other routes still need one', async () => {
    const keyed = await buildTestApi(prefix, { ...webhookEnv(), QUEUE_PARTITIONS: '3', API_KEYS: 'acme:webhook-test-key-0123456789', RATE_LIMIT_MAX: '1' });
    try {
      const record = await delivered();
      for (let i = 0; i < 3; i++) {
        expect((await postTwilio(keyed, STATUS, twilioStatusParams(record.providerMessageId!, 'sent'))).statusCode).toBe(200);
      }
      expect((await keyed.inject({ method: 'GET', url: '/delivered' })).statusCode).toBe(401);
      expect((await postTwilio(keyed, STATUS, twilioStatusParams(record.providerMessageId!, 'sent'), { signature: null })).statusCode).toBe(403);
    } finally {
      await keyed.close();
    }
  });
});

describe('webhook logs', () => {
  it('carry no number, text, token or signature', async () => {
    const logs: string[] = [];
    const logged = await buildTestApi(prefix, { ...webhookEnv(), QUEUE_PARTITIONS: '3' }, logs);
    try {
      const record = await delivered();
      await postTwilio(logged, STATUS, twilioStatusParams(record.providerMessageId!, 'delivered', { To: '+5511912345678' }));
      const inbound = { Body: 'STOP please', From: 'whatsapp:+5511987654321', To: '+15005550006', MessageSid: newTwilioSid() };
      await postTwilio(logged, '/webhooks/twilio/inbound', inbound);
      await logged.inject({ method: 'GET', url: `/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42&hub.verify_token=${WHATSAPP_VERIFY_TOKEN}` });
      const text = logs.join('\n');
      expect(text).toContain(record.id);
      expect(text).toContain('"channel":"whatsapp"');
      for (const secret of ['5511912345678', '5511987654321', 'STOP', WHATSAPP_VERIFY_TOKEN, twilioSignatureOf(`${PUBLIC_BASE_URL}/webhooks/twilio/inbound`, inbound)]) {
        expect(text).not.toContain(secret);
      }
    } finally {
      await logged.close();
    }
  });
});
