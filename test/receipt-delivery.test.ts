import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHttpServer, type RecordedRequest } from '../test-support/fake-http.js';
import { FeedWatcher, deletePrefix, uniquePrefix } from '../test-support/redis.js';
import { buildTestApp, startTestWorker } from '../test-support/apps.js';
import { TWILIO_AUTH, TWILIO_PATH, TWILIO_SID, twilioEnv, twilioMessage } from '../test-support/providers.js';
import { PUBLIC_BASE_URL, newTwilioSid, postTwilio, twilioStatusParams, webhookEnv } from '../test-support/webhooks.js';

const SECRET = 'whsec_receipts_0123456789';
const prefix = uniquePrefix('e2e-receipts');
let twilio: FakeHttpServer;
let receiver: FakeHttpServer;
let feed: FeedWatcher;
let app: Awaited<ReturnType<typeof buildTestApp>>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;

/** Twilio: a new SID for each message it accepts; its Message resource says `delivered`. */
const sids = new Map<string, string>();
function twilioAnswers(request: RecordedRequest) {
  if (request.method === 'POST') {
    const sid = newTwilioSid();
    sids.set(new URLSearchParams(request.body).get('Body')!, sid);
    return { status: 201, body: twilioMessage(sid) };
  }
  const sid = /\/Messages\/([^/]+)\.json$/.exec(request.path)![1]!;
  return { status: 200, body: { ...twilioMessage(sid), status: 'delivered', date_updated: new Date().toUTCString().replace('GMT', '+0000') } };
}

beforeAll(async () => {
  twilio = await FakeHttpServer.start(twilioAnswers);
  receiver = await FakeHttpServer.start(() => ({ status: 204 }));
  feed = await FeedWatcher.start(prefix);
  app = await buildTestApp(prefix, webhookEnv());
  worker = await startTestWorker(prefix, {
    ...twilioEnv(twilio.url),
    PUBLIC_BASE_URL,
    CALLBACK_SECRET: SECRET,
    CALLBACK_ALLOW_PRIVATE: 'true',
    RECEIPT_POLL_AFTER_MS: '1000',
    RECONCILE_INTERVAL_MS: '200',
  });
});
afterAll(async () => {
  await worker?.close();
  await app?.close();
  await feed?.close();
  await receiver?.close();
  await twilio?.close();
  await deletePrefix(prefix);
});

function signedBy(request: RecordedRequest): boolean {
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(request.headers['x-signature'])) ?? [];
  return v1 !== undefined && timingSafeEqual(createHmac('sha256', SECRET).update(`${t}.${request.body}`).digest(), Buffer.from(v1, 'hex'));
}

const callbackOf = (id: string, event: string) => (r: RecordedRequest) => {
  const body = JSON.parse(r.body);
  return body.data.id === id && body.event === event;
};

async function schedule(text: string): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient: '+15551234567', message: text, channel: 'sms', sendAt: Date.now(), callbackUrl: `${receiver.url}/hooks` },
  });
  expect(response.statusCode).toBe(201);
  return response.json().id;
}

const get = async (id: string) => (await app.inject({ url: `/messages/${id}` })).json().data;

describe('delivery receipts, end to end', () => {
  it('sends with StatusCallback, takes Twilio’s signed status callback, and tells the feed and the callbackUrl', async () => {
    const id = await schedule('receipt by callback');
    await receiver.waitForRequests(1, callbackOf(id, 'messageDelivered'));
    const send = twilio.requests.find((r) => r.method === 'POST' && new URLSearchParams(r.body).get('Body') === 'receipt by callback')!;
    expect(send.path).toBe(TWILIO_PATH);
    expect(new URLSearchParams(send.body).get('StatusCallback')).toBe(`${PUBLIC_BASE_URL}/webhooks/twilio/status`);

    const sid = sids.get('receipt by callback')!;
    expect((await postTwilio(app, '/webhooks/twilio/status', twilioStatusParams(sid, 'delivered'))).statusCode).toBe(200);
    const [callback] = await receiver.waitForRequests(1, callbackOf(id, 'messageReceipt'));
    const record = await get(id);
    expect(record).toMatchObject({ status: 'delivered', providerMessageId: sid, receipt: { status: 'delivered' } });
    expect(JSON.parse(callback!.body)).toEqual({ event: 'messageReceipt', data: record });
    expect(callback!.headers['x-punctual-event']).toBe('messageReceipt');
    expect(signedBy(callback!)).toBe(true);
    expect((await feed.waitFor('messageReceipt', id)).data).toMatchObject({ receiptStatus: 'delivered', version: String(record.version) });
    expect(feed.events(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered', 'messageReceipt']);
  });

  it('looks a message with no receipt up at Twilio, RECEIPT_POLL_AFTER_MS after acceptance', async () => {
    const id = await schedule('receipt by lookup');
    const [callback] = await receiver.waitForRequests(1, callbackOf(id, 'messageReceipt'));
    const sid = sids.get('receipt by lookup')!;
    const record = await get(id);
    expect(record.receipt).toMatchObject({ status: 'delivered' });
    expect(Date.parse(record.updatedAt) - Date.parse(record.deliveredAt)).toBeGreaterThanOrEqual(1000);
    expect(JSON.parse(callback!.body)).toEqual({ event: 'messageReceipt', data: record });

    const lookups = twilio.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/${sid}.json`));
    expect(lookups.map((r) => r.path)).toEqual([`/2010-04-01/Accounts/${TWILIO_SID}/Messages/${sid}.json`]);
    expect(lookups[0]!.headers.authorization).toBe(TWILIO_AUTH);
  });
});
