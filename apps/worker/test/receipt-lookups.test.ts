import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Agent } from 'undici';
import { Keyspace, Scheduler, receiptKeys } from '@punctual/store';
import { loadConfig } from '../src/config.js';
import { createHttpAgent } from '../src/http-client.js';
import { createTwilioLookup } from '../src/channels/twilio-lookup.js';
import { LOOKUPS_PER_PASS, LOOKUP_RETRY_MS, lookUpMissingReceipts, type ReceiptTaskDeps } from '../src/receipts.js';
import { FakeHttpServer, type FakeAnswer, type RecordedRequest } from '../../../test-support/fake-http.js';
import { TWILIO_AUTH, TWILIO_SID, twilioEnv } from '../../../test-support/providers.js';
import { newTwilioSid } from '../../../test-support/webhooks.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('receipt-lookups');
const keyspace = new Keyspace({ prefix, partitions: 3 });
let redis: Redis;
let scheduler: Scheduler;
let twilio: FakeHttpServer;
let agent: Agent;
let deps: ReceiptTaskDeps;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: 10_000 });
  twilio = await FakeHttpServer.start();
  agent = createHttpAgent({ timeoutMs: 2000 });
  const config = loadConfig(twilioEnv(twilio.url));
  deps = { scheduler, lookUp: createTwilioLookup(config.twilio!, agent, 2000), log: pino({ level: 'silent' }) };
});
afterAll(async () => {
  await scheduler.close();
  await agent.close();
  await twilio.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

/** The Message resource as Twilio answers `GET …/Messages/{Sid}.json`. */
function messageResource(sid: string, status: string, errorCode: number | null = null, updatedAt = Date.now()) {
  return {
    account_sid: TWILIO_SID,
    sid,
    status,
    error_code: errorCode,
    error_message: null,
    num_segments: '1',
    date_created: new Date(updatedAt - 5000).toUTCString().replace('GMT', '+0000'),
    date_updated: new Date(updatedAt).toUTCString().replace('GMT', '+0000'),
    uri: `/2010-04-01/Accounts/${TWILIO_SID}/Messages/${sid}.json`,
  };
}

const sidOf = (request: RecordedRequest) => /\/Messages\/([^/]+)\.json$/.exec(request.path)![1]!;

/** Twilio knows each message by its SID with this status. */
function twilioSays(status: string, errorCode: number | null = null): (request: RecordedRequest) => FakeAnswer {
  return (request) => ({ status: 200, body: messageResource(sidOf(request), status, errorCode) });
}

/** A message Twilio accepted, whose receipt lookup is due at `lookupAt`. */
async function accepted(lookupAt: number, over: { callbackUrl?: string } = {}) {
  const now = Date.now();
  const result = await scheduler.schedule('default', { recipient: '+15551234567', channel: 'sms', sendAt: now, message: 'hi', ...over }, now);
  if (!result.ok) throw new Error(result.reason);
  await scheduler.claim(result.record.id, now);
  return (await scheduler.deliver(result.record.id, now, newTwilioSid(), 1, lookupAt))!;
}

const get = async (id: string) => (await scheduler.store.get('default', id))!;
const inLookups = async (id: string) => (await redis.zscore(receiptKeys(keyspace.tagOf(id)).lookups, id)) !== null;

beforeEach(async () => {
  // each test starts with no lookup due
  for (const tag of keyspace.allTags()) await redis.del(receiptKeys(tag).lookups);
  twilio.requests.length = 0;
});

describe('looking up missing receipts at Twilio', () => {
  it('asks Twilio’s Message resource once, exactly, and takes the receipt from its status and time', async () => {
    const now = Date.now();
    const message = await accepted(now - 1);
    const updatedAt = now + 4000;
    twilio.respondWith((request) => ({ status: 200, body: messageResource(sidOf(request), 'delivered', null, updatedAt) }));

    expect(await lookUpMissingReceipts(deps, now)).toEqual({ lookedUp: 1, applied: 1, rateLimited: false });
    expect(twilio.requests).toHaveLength(1);
    const [request] = twilio.requests;
    expect(request!.method).toBe('GET');
    expect(request!.path).toBe(`/2010-04-01/Accounts/${TWILIO_SID}/Messages/${message.providerMessageId}.json`);
    expect(request!.headers.authorization).toBe(TWILIO_AUTH);
    expect(request!.headers.accept).toBe('application/json');
    expect(request!.body).toBe('');
    expect((await get(message.id)).receipt).toEqual({ status: 'delivered', at: new Date(Math.floor(updatedAt / 1000) * 1000).toISOString() });

    expect(await lookUpMissingReceipts(deps, now + 10 * LOOKUP_RETRY_MS)).toEqual({ lookedUp: 0, applied: 0, rateLimited: false });
    expect(twilio.requests).toHaveLength(1);
  });

  it('looks up a message with no receipt or only sent, never one delivered, read, undelivered or failed, nor one not due', async () => {
    const now = Date.now();
    const missing = await accepted(now - 1);
    const sent = await accepted(now - 1);
    await scheduler.recordReceipt({ providerMessageId: sent.providerMessageId!, status: 'sent', at: now }, now);
    const settled = [];
    for (const status of ['delivered', 'read', 'undelivered', 'failed'] as const) {
      const message = await accepted(now - 1);
      await scheduler.recordReceipt({ providerMessageId: message.providerMessageId!, status, at: now }, now);
      settled.push(message);
    }
    const notDue = await accepted(now + 60_000);
    twilio.respondWith(twilioSays('undelivered', 30003));

    expect(await lookUpMissingReceipts(deps, now)).toMatchObject({ lookedUp: 2, applied: 2 });
    expect(twilio.requests.map(sidOf).sort()).toEqual([missing.providerMessageId, sent.providerMessageId].sort());
    for (const message of [missing, sent]) {
      expect((await get(message.id)).receipt).toMatchObject({ status: 'undelivered', errorCode: '30003' });
      expect(await inLookups(message.id)).toBe(false);
    }
    for (const message of settled) expect(await inLookups(message.id)).toBe(false);
    expect(await inLookups(notDue.id)).toBe(true);
  });

  it('takes nothing from a status that is no receipt yet, and still asks only once', async () => {
    const now = Date.now();
    const message = await accepted(now - 1);
    twilio.respondWith(twilioSays('sending'));
    expect(await lookUpMissingReceipts(deps, now)).toEqual({ lookedUp: 1, applied: 0, rateLimited: false });
    expect((await get(message.id)).receipt).toBeUndefined();
    expect(await inLookups(message.id)).toBe(false);
  });

  it(`asks at most ${LOOKUPS_PER_PASS} a pass, and stops a pass at a 429, giving back what it had not tried`, async () => {
    const now = Date.now();
    const messages = [];
    for (let i = 0; i < LOOKUPS_PER_PASS + 10; i++) messages.push(await accepted(now - 1));

    twilio.respondWith(() => ({ status: 429, body: { code: 20429, message: 'Too Many Requests', status: 429 } }));
    const limited = await lookUpMissingReceipts(deps, now);
    expect(limited).toEqual({ lookedUp: 0, applied: 0, rateLimited: true });
    expect(twilio.requests.length).toBeGreaterThan(0);
    expect(twilio.requests.length).toBeLessThanOrEqual(4);
    // every one due again at once, none leased
    for (const message of messages) expect(Number(await redis.zscore(receiptKeys(keyspace.tagOf(message.id)).lookups, message.id))).toBeLessThanOrEqual(now);

    twilio.requests.length = 0;
    twilio.respondWith(twilioSays('delivered'));
    expect(await lookUpMissingReceipts(deps, now)).toMatchObject({ lookedUp: LOOKUPS_PER_PASS, rateLimited: false });
    expect(twilio.requests).toHaveLength(LOOKUPS_PER_PASS);
    expect(await lookUpMissingReceipts(deps, now)).toMatchObject({ lookedUp: 10 });
    expect(new Set(twilio.requests.map(sidOf)).size).toBe(LOOKUPS_PER_PASS + 10);
    for (const message of messages) expect((await get(message.id)).receipt?.status).toBe('delivered');
  });

  it('asks again later when Twilio is unavailable, and never again after a 404', async () => {
    const now = Date.now();
    const unavailable = await accepted(now - 1);
    twilio.respondWith(() => ({ status: 503, body: { code: 20503, message: 'Service Unavailable', status: 503 } }));
    expect(await lookUpMissingReceipts(deps, now)).toMatchObject({ lookedUp: 0 });
    expect(twilio.requests).toHaveLength(1);
    // leased meanwhile: another pass (another worker) does not ask before the retry time
    expect(await lookUpMissingReceipts(deps, now + 1000)).toMatchObject({ lookedUp: 0 });
    expect(twilio.requests).toHaveLength(1);

    twilio.respondWith(() => ({ status: 404, body: { code: 20404, message: 'Not found', status: 404 } }));
    await lookUpMissingReceipts(deps, now + LOOKUP_RETRY_MS + 1);
    expect(twilio.requests).toHaveLength(2);
    expect(await inLookups(unavailable.id)).toBe(false);
    expect((await get(unavailable.id)).receipt).toBeUndefined();
  });

  it('queues the messageReceipt callback of a receipt found by a lookup', async () => {
    const now = Date.now();
    const message = await accepted(now - 1, { callbackUrl: 'https://example.com/cb' });
    twilio.respondWith(twilioSays('delivered'));
    await lookUpMissingReceipts(deps, now);
    const record = await get(message.id);
    const job = await scheduler.callbacks.of(message.id).getJob(`${message.id}-v${record.version}`);
    expect(job?.data).toEqual({ event: 'messageReceipt', tenant: 'default', record });
  });
});
