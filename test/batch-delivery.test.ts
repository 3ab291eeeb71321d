import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, startTestWorker } from '../test-support/apps.js';
import { FakeHttpServer, type RecordedRequest } from '../test-support/fake-http.js';
import { twilioEnv, twilioError, twilioMessage } from '../test-support/providers.js';
import { FeedWatcher, deletePrefix, uniquePrefix } from '../test-support/redis.js';

/** Recipients the fake Twilio answers in a set way; every other one is accepted. */
const REFUSED_ONCE = '15550000001';
const FLAKY_ONCE = '15550000002';

const prefix = uniquePrefix('e2e-batches');
let fake: FakeHttpServer;
let app: Awaited<ReturnType<typeof buildTestApp>>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let feed: FeedWatcher;

const toOf = (request: RecordedRequest) => new URLSearchParams(request.body).get('To')!.replace(/^\+/, '');

beforeAll(async () => {
  const seen = new Map<string, number>();
  fake = await FakeHttpServer.start((request, n) => {
    const to = toOf(request);
    const times = (seen.get(to) ?? 0) + 1;
    seen.set(to, times);
    if (to === REFUSED_ONCE && times === 1) return twilioError(400, 21211, "The 'To' number is not a valid phone number.");
    if (to === FLAKY_ONCE && times === 1) return twilioError(503, 20503, 'Service unavailable');
    // a provider call takes a little while, so deliveries of a batch overlap its cancel
    return { status: 201, body: twilioMessage(`SM${String(n).padStart(32, '0')}`), delayMs: 5 };
  });
  app = await buildTestApp(prefix);
  worker = await startTestWorker(prefix, twilioEnv(fake.url, { DELIVERY_BACKOFF_MS: '50' }));
  feed = await FeedWatcher.start(prefix);
});
afterAll(async () => {
  await worker?.close();
  await app?.close();
  await feed?.close();
  await fake?.close();
  await deletePrefix(prefix);
});

const message = (recipient: string, sendAt: number) => ({ recipient, message: 'Your appointment is tomorrow', channel: 'sms', sendAt });

async function postBatch(messages: unknown[]) {
  const res = await app.inject({ method: 'POST', url: '/scheduled/batch', payload: { messages } });
  expect(res.statusCode).toBe(200);
  return res.json() as { batchId: string; results: { index: number; status: number; id: string }[] };
}

const counts = async (batchId: string) => (await app.inject({ url: `/batches/${batchId}` })).json().counts;
const zero = { scheduled: 0, sending: 0, delivered: 0, failed: 0, canceled: 0 };

describe('a batch delivered by the worker', () => {
  it('keeps its counts through delivery, a retried attempt, a failure retried, and cancels one by one and by batch', async () => {
    const now = Date.now();
    const later = now + 3_600_000;
    const { batchId, results } = await postBatch([
      message('15550000000', now),
      message(FLAKY_ONCE, now),
      message(REFUSED_ONCE, now),
      message('15550000003', later),
      message('15550000004', later),
      message('15550000005', later),
    ]);
    const ids = results.map((r) => r.id);
    await Promise.all([
      feed.waitFor('messageDelivered', ids[0]!),
      feed.waitFor('messageDelivered', ids[1]!),
      feed.waitFor('messageFailed', ids[2]!),
    ]);
    expect(feed.events(ids[1]!)).toEqual(['messageScheduled', 'messageSending', 'messageRetrying', 'messageSending', 'messageDelivered']);
    expect(await counts(batchId)).toEqual({ ...zero, scheduled: 3, delivered: 2, failed: 1 });

    expect((await app.inject({ method: 'POST', url: `/failed/${ids[2]}/retry` })).statusCode).toBe(202);
    await feed.waitFor('messageDelivered', ids[2]!);
    expect(await counts(batchId)).toEqual({ ...zero, scheduled: 3, delivered: 3 });

    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${ids[3]}` })).statusCode).toBe(200);
    expect(await counts(batchId)).toEqual({ ...zero, scheduled: 2, delivered: 3, canceled: 1 });
    expect((await app.inject({ method: 'DELETE', url: `/batches/${batchId}` })).json()).toEqual({ canceled: 2 });
    expect(await app.inject({ url: `/batches/${batchId}` }).then((r) => r.json())).toMatchObject({
      total: 6,
      counts: { ...zero, delivered: 3, canceled: 3 },
    });
    for (const id of ids.slice(3)) expect(feed.events(id)).toEqual(['messageScheduled', 'messageDeleted']);
  });

  it('canceled while its first deliveries start: after the 200, none of the canceled ones is ever sent', async () => {
    const size = 300;
    const due = Date.now() + 1000;
    const recipients = Array.from({ length: size }, (_, i) => `1666${String(i).padStart(7, '0')}`);
    const { batchId, results } = await postBatch(recipients.map((r) => message(r, due)));
    const ids = new Set(results.map((r) => r.id));
    const sentBefore = fake.requests.length;

    // the cancel goes out as the first delivery of the batch reaches the provider
    await fake.waitForRequests(sentBefore + 1);
    const res = await app.inject({ method: 'DELETE', url: `/batches/${batchId}` });
    expect(res.statusCode).toBe(200);
    const { canceled } = res.json() as { canceled: number };

    // every message settles: claimed ones are delivered, the rest stay canceled
    const deadline = Date.now() + 20_000;
    let settled = await counts(batchId);
    while (settled.scheduled + settled.sending > 0) {
      if (Date.now() > deadline) throw new Error(`batch not settled: ${JSON.stringify(settled)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      settled = await counts(batchId);
    }
    expect(settled).toEqual({ ...zero, delivered: size - canceled, canceled });

    // a sentinel delivered after the batch: the worker has drained everything due before it
    const sentinel = await postBatch([message('15550009999', Date.now())]);
    await feed.waitFor('messageDelivered', sentinel.results[0]!.id);

    const sent = fake.requests.slice(sentBefore).map(toOf).filter((to) => recipients.includes(to));
    const records = await Promise.all([...ids].map(async (id) => (await app.inject({ url: `/messages/${id}` })).json().data));
    const canceledRecipients = new Set(records.filter((r) => r.status === 'canceled').map((r) => r.recipient));
    expect(canceledRecipients.size).toBe(canceled);
    expect(sent.filter((to) => canceledRecipients.has(to))).toEqual([]);
    // each message sent at most once, and every one sent is delivered
    expect(new Set(sent).size).toBe(sent.length);
    expect(sent.length).toBe(size - canceled);
    for (const id of ids) {
      const events = feed.events(id);
      expect(events.includes('messageDeleted') && events.includes('messageSending')).toBe(false);
    }
  });
});
