import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { bearer, buildTestApi, fingerprint, newMessage } from '../helpers.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { metaNotification, newTwilioSid, postMeta, postTwilio, webhookEnv } from '../../../../test-support/webhooks.js';

/**
 * A STOP (or START) sent to one of our numbers, through the providers' signed webhooks: it opts
 * the sender out of (or back into) that channel for every tenant, and cancels what they had
 * scheduled to it.
 */
const prefix = uniquePrefix('webhooks-inbound');
const KEYS = { acme: 'inbound-test-key-acme-0123', globex: 'inbound-test-key-globex-456' };
let app: FastifyInstance;
let redis: Redis;

beforeAll(async () => {
  app = await buildTestApi(prefix, { ...webhookEnv(), API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`, RATE_LIMIT_MAX: '0', QUEUE_PARTITIONS: '3' });
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
});

const twilioInbound = (from: string, body: string) => ({ AccountSid: 'AC1', ApiVersion: '2010-04-01', Body: body, From: from, MessageSid: newTwilioSid(), NumMedia: '0', To: '+15005550006' });
const metaInbound = (from: string, body: string) =>
  JSON.stringify(metaNotification({ messages: [{ from, id: `wamid.${newTwilioSid()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body } }] }));

async function schedule(tenant: keyof typeof KEYS, recipient: string, channel: 'sms' | 'whatsapp') {
  const response = await app.inject({ method: 'POST', url: '/scheduled', headers: bearer(KEYS[tenant]), payload: newMessage({ recipient, channel }) });
  return response;
}

const statusOf = async (tenant: keyof typeof KEYS, id: string) =>
  (await app.inject({ url: `/messages/${id}`, headers: bearer(KEYS[tenant]) })).json().data;

describe('an opt-out keyword sent to our number', () => {
  it('through Twilio (signed): cancels every tenant\'s scheduled SMS to the sender, refuses new ones; START lets them through again', async () => {
    const number = '5511970000001';
    const acme = (await schedule('acme', `+${number}`, 'sms')).json().id as string;
    const globex = (await schedule('globex', number, 'sms')).json().id as string;
    const whatsapp = (await schedule('acme', number, 'whatsapp')).json().id as string;

    const stop = await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`+${number}`, '  stop  '));
    expect(stop.statusCode).toBe(200);
    expect(stop.body).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');
    expect(await statusOf('acme', acme)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect(await statusOf('globex', globex)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    // another channel is another opt-out
    expect(await statusOf('acme', whatsapp)).toMatchObject({ status: 'scheduled' });
    expect((await schedule('globex', number, 'sms')).json()).toMatchObject({ statusCode: 422, code: 'RECIPIENT_OPTED_OUT' });

    expect((await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`+${number}`, 'Start'))).statusCode).toBe(200);
    expect((await schedule('globex', number, 'sms')).statusCode).toBe(201);
    // what the STOP canceled stays canceled
    expect(await statusOf('acme', acme)).toMatchObject({ status: 'canceled' });
  });

  it('through Twilio for WhatsApp (From whatsapp:+…): opts out of WhatsApp only', async () => {
    const number = '5511970000002';
    const sms = (await schedule('acme', number, 'sms')).json().id as string;
    const whatsapp = (await schedule('acme', number, 'whatsapp')).json().id as string;
    expect((await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`whatsapp:+${number}`, 'UNSUBSCRIBE'))).statusCode).toBe(200);
    expect(await statusOf('acme', whatsapp)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect(await statusOf('acme', sms)).toMatchObject({ status: 'scheduled' });
  });

  it('through Meta (signed `messages[]`): cancels the WhatsApp messages, and START opts back in', async () => {
    const number = '5511970000003';
    const whatsapp = (await schedule('globex', `+${number}`, 'whatsapp')).json().id as string;
    expect((await postMeta(app, metaInbound(number, 'Stop'))).statusCode).toBe(200);
    expect(await statusOf('globex', whatsapp)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect((await schedule('acme', number, 'whatsapp')).statusCode).toBe(422);
    expect((await postMeta(app, metaInbound(number, 'UNSTOP'))).statusCode).toBe(200);
    expect((await schedule('acme', number, 'whatsapp')).statusCode).toBe(201);
  });

  it('unsigned or wrongly signed, or not a keyword: changes nothing', async () => {
    const number = '5511970000004';
    await schedule('acme', number, 'sms');
    await schedule('acme', number, 'whatsapp');
    const before = await fingerprint(redis, prefix);
    expect((await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`+${number}`, 'STOP'), { signature: null })).statusCode).toBe(403);
    expect((await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`+${number}`, 'STOP'), { signature: 'bm90IGl0' })).statusCode).toBe(403);
    expect((await postMeta(app, metaInbound(number, 'STOP'), { signature: null })).statusCode).toBe(403);
    expect((await postMeta(app, metaInbound(number, 'STOP'), { signature: `sha256=${'0'.repeat(64)}` })).statusCode).toBe(403);
    for (const text of ['STOP.', 'please stop', 'Stop it']) {
      expect((await postTwilio(app, '/webhooks/twilio/inbound', twilioInbound(`+${number}`, text))).statusCode).toBe(200);
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });
});
