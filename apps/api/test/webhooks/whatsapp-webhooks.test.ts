import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { MessageRecord } from '@punctual/shared';
import { buildTestApi, fingerprint } from '../helpers.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import {
  WHATSAPP_APP_SECRET,
  WHATSAPP_VERIFY_TOKEN,
  metaNotification,
  metaSignatureOf,
  postMeta,
  postTwilio,
  twilioStatusParams,
  webhookEnv,
} from '../../../../test-support/webhooks.js';

const prefix = uniquePrefix('webhooks-whatsapp');
let app: FastifyInstance;
let redis: Redis;
let wamids = 0;

beforeAll(async () => {
  app = await buildTestApi(prefix, { ...webhookEnv(), QUEUE_PARTITIONS: '3' });
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
});

const newWamid = () => `wamid.HBgNNTUxMTk5OTk5OTk5ORUCABEYEj${Buffer.from(`msg-${++wamids}-${Date.now()}`).toString('base64')}`;

/** A WhatsApp message the Cloud API accepted just now. */
async function delivered(callbackUrl?: string): Promise<MessageRecord> {
  const now = Date.now();
  const result = await app.scheduler.schedule('default', { recipient: '5511999999999', channel: 'whatsapp', sendAt: now, message: 'hi', ...(callbackUrl ? { callbackUrl } : {}) }, now);
  if (!result.ok) throw new Error(result.reason);
  await app.scheduler.claim(result.record.id, now);
  return (await app.scheduler.deliver(result.record.id, Date.now(), newWamid(), 3))!;
}

const get = async (id: string): Promise<MessageRecord> => (await app.inject({ method: 'GET', url: `/messages/${id}` })).json().data;
const unixSeconds = (ms: number) => String(Math.floor(ms / 1000));

describe("Meta's subscription check", () => {
  const verify = (query: string) => app.inject({ method: 'GET', url: `/webhooks/whatsapp?${query}` });

  it('echoes the challenge when the verify token matches', async () => {
    const response = await verify(`hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${WHATSAPP_VERIFY_TOKEN}`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toBe('1158201444');
  });

  it('answers 403 to a wrong or missing token, or another mode', async () => {
    for (const query of [
      'hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong',
      'hub.mode=subscribe&hub.challenge=1',
      `hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=${WHATSAPP_VERIFY_TOKEN}`,
      `hub.mode=subscribe&hub.verify_token=${WHATSAPP_VERIFY_TOKEN}`,
    ]) {
      const response = await verify(query);
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'INVALID_SIGNATURE' });
    }
  });
});

describe('receipts from WhatsApp Cloud API notifications', () => {
  it('applies statuses by the message id carried back, with the provider time and the error code', async () => {
    const record = await delivered();
    const sentAt = Date.now() + 2000;
    const raw = JSON.stringify(metaNotification({ statuses: [{ id: record.providerMessageId!, status: 'sent', timestamp: unixSeconds(sentAt), biz_opaque_callback_data: record.id }] }));
    expect((await postMeta(app, raw)).statusCode).toBe(200);
    expect((await get(record.id)).receipt).toEqual({ status: 'sent', at: new Date(Math.floor(sentAt / 1000) * 1000).toISOString() });

    const failed = JSON.stringify(
      metaNotification({
        statuses: [{ id: record.providerMessageId!, status: 'failed', biz_opaque_callback_data: record.id, errors: [{ code: 131047, title: 'Re-engagement message' }] }],
      }),
    );
    expect((await postMeta(app, failed)).statusCode).toBe(200);
    expect((await get(record.id)).receipt).toMatchObject({ status: 'failed', errorCode: '131047' });
  });

  it('finds a status without biz_opaque_callback_data through its wamid, out of order, in one batch', async () => {
    const one = await delivered();
    const two = await delivered();
    // Meta may skip delivered when read comes at once, and send a late delivered after it
    const raw = JSON.stringify(
      metaNotification({
        statuses: [
          { id: one.providerMessageId!, status: 'read' },
          { id: two.providerMessageId!, status: 'delivered' },
          { id: one.providerMessageId!, status: 'delivered' },
          { id: 'wamid.not-ours', status: 'delivered' },
          { id: two.providerMessageId!, status: 'deleted' },
        ],
      }),
    );
    expect((await postMeta(app, raw)).statusCode).toBe(200);
    expect((await get(one.id)).receipt?.status).toBe('read');
    expect((await get(two.id)).receipt?.status).toBe('delivered');
    // the same notification again (Meta retries for days) changes nothing
    const before = await fingerprint(redis, prefix);
    expect((await postMeta(app, raw)).statusCode).toBe(200);
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('refuses a bad, missing or wrongly keyed signature, and one byte changed in the raw body, with 403, changing nothing', async () => {
    const record = await delivered();
    const raw = JSON.stringify(metaNotification({ statuses: [{ id: record.providerMessageId!, status: 'delivered' }] }));
    // the same JSON value with different bytes: a verifier that re-serialized the body would accept it
    const spaced = raw.replace('"status":"delivered"', '"status": "delivered"');
    expect(JSON.parse(spaced)).toEqual(JSON.parse(raw));
    const before = await fingerprint(redis, prefix);
    const refusals = [
      await postMeta(app, raw, { signature: null }),
      await postMeta(app, raw, { signature: 'sha256=' }),
      await postMeta(app, raw, { signature: metaSignatureOf(raw).replace('sha256=', 'sha1=') }),
      await postMeta(app, raw, { signature: metaSignatureOf(raw, 'another-secret') }),
      await postMeta(app, spaced, { signature: metaSignatureOf(raw) }),
      await postMeta(app, raw.replace('delivered', 'read'), { signature: metaSignatureOf(raw) }),
      await postMeta(app, 'not json at all', { signature: 'sha256=00' }),
    ];
    for (const response of refusals) {
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({ statusCode: 403, code: 'INVALID_SIGNATURE', error: 'Forbidden', message: 'X-Hub-Signature-256 is missing or does not match this request' });
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
    expect((await postMeta(app, spaced)).statusCode).toBe(200);
    expect((await get(record.id)).receipt?.status).toBe('delivered');
  });

  it('refuses a signed body that is not JSON (400), is not JSON (415), or is over 3 MB (413)', async () => {
    expect((await postMeta(app, '{"object":')).json()).toMatchObject({ statusCode: 400, message: 'Body is not valid JSON' });
    const form = await app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' });
    expect(form.json()).toMatchObject({ statusCode: 415, message: 'Body must be application/json' });
    const big = JSON.stringify({ object: 'whatsapp_business_account', entry: [], pad: 'x'.repeat(3 * 1024 * 1024) });
    expect((await postMeta(app, big)).json()).toMatchObject({ statusCode: 413, message: `Body is larger than ${3 * 1024 * 1024} bytes` });
  });

  it('counts inbound messages; one that is no keyword stores nothing', async () => {
    const raw = JSON.stringify(
      metaNotification({
        messages: [
          { from: '5511977776666', id: 'wamid.in1', timestamp: unixSeconds(Date.now()), type: 'text', text: { body: 'Thanks, see you then' } },
          { from: '5511977776666', id: 'wamid.in2', timestamp: unixSeconds(Date.now()), type: 'image', image: { id: '1' } },
        ],
      }),
    );
    const before = await fingerprint(redis, prefix);
    expect((await postMeta(app, raw)).statusCode).toBe(200);
    expect(await fingerprint(redis, prefix)).toEqual(before);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^punctual_inbound_messages_total\{channel="whatsapp"\} 2$/m);
  });
});

describe('webhooks without their secrets', () => {
  it('answer 404 like a route that does not exist, each route for its own secret', async () => {
    const prefixes = [uniquePrefix('webhooks-bare'), uniquePrefix('webhooks-meta')];
    const bare = await buildTestApi(prefixes[0]!);
    const onlyMeta = await buildTestApi(prefixes[1]!, { WHATSAPP_APP_SECRET, TWILIO_AUTH_TOKEN: 'token-without-a-public-url' });
    try {
      const requests = [
        { method: 'POST' as const, url: '/webhooks/twilio/status' },
        { method: 'POST' as const, url: '/webhooks/twilio/inbound' },
        { method: 'GET' as const, url: `/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=${WHATSAPP_VERIFY_TOKEN}` },
        { method: 'POST' as const, url: '/webhooks/whatsapp' },
      ];
      for (const request of requests) {
        const response = await bare.inject({ ...request, headers: { 'content-type': 'application/json' }, payload: request.method === 'POST' ? '{}' : undefined });
        expect(response.statusCode).toBe(404);
        expect(response.json()).toEqual({ statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: `Route ${request.method} ${request.url.split('?')[0]} not found` });
      }
      expect((await postTwilio(onlyMeta, '/webhooks/twilio/status', twilioStatusParams('SM1', 'sent'))).statusCode).toBe(404);
      expect((await onlyMeta.inject(requests[2]!)).statusCode).toBe(404);
      expect((await postMeta(onlyMeta, JSON.stringify(metaNotification({})))).statusCode).toBe(200);
    } finally {
      await bare.close();
      await onlyMeta.close();
      for (const p of prefixes) await deletePrefix(p);
    }
  });

  it('are documented in OpenAPI, with no API key', async () => {
    const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    await SwaggerParser.validate(structuredClone(spec));
    expect(spec.paths['/webhooks/twilio/status'].post).toMatchObject({ tags: ['webhooks'], security: [] });
    expect(Object.keys(spec.paths['/webhooks/twilio/status'].post.requestBody.content)).toEqual(['application/x-www-form-urlencoded']);
    expect(spec.paths['/webhooks/twilio/inbound'].post.responses['200'].content['text/xml']).toBeDefined();
    expect(spec.paths['/webhooks/whatsapp'].get.security).toEqual([]);
    expect(spec.paths['/webhooks/whatsapp'].post.responses['403']).toBeDefined();
  });
});
