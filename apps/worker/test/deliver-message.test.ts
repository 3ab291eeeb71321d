import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FakeHttpServer, type FakeAnswer, type RecordedRequest } from '../../../test-support/fake-http.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { TestMessages } from '../../../test-support/messages.js';
import { CompletedJobs, startTestWorker } from '../../../test-support/apps.js';
import { TWILIO_PATH, twilioEnv, twilioError, twilioMessage } from '../../../test-support/providers.js';

const prefix = uniquePrefix('delivery');
let fake: FakeHttpServer;
let feed: FeedWatcher;
let messages: TestMessages;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let completed: CompletedJobs;

beforeAll(async () => {
  fake = await FakeHttpServer.start();
  feed = await FeedWatcher.start(prefix);
  messages = await TestMessages.create(prefix);
  worker = await startTestWorker(prefix, { ...twilioEnv(fake.url), DELIVERY_ATTEMPTS: '3', PROVIDER_TIMEOUT_MS: '2000' });
  completed = new CompletedJobs(worker.workers[0]!);
});
afterAll(async () => {
  completed.stop();
  await worker.close();
  await messages.close();
  await feed.close();
  await fake.close();
  await deletePrefix(prefix);
});

/** Requests Twilio received for one message (the text is unique per test). */
const sendsOf = (text: string) => fake.requests.filter((r) => new URLSearchParams(r.body).get('Body') === text);

/** Answers each message's n-th request with `answers[n]` (the last one repeats). */
function script(answers: FakeAnswer[]) {
  const counts = new Map<string, number>();
  fake.respondWith((request: RecordedRequest) => {
    const key = new URLSearchParams(request.body).get('Body') ?? '';
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    return answers[Math.min(n, answers.length - 1)]!;
  });
}

describe('delivery through Twilio', () => {
  it('delivers once and records the provider message id', async () => {
    script([{ status: 201, body: twilioMessage('SMdelivered') }]);
    const m = await messages.schedule({ message: 'plain delivery' });
    await feed.waitFor('messageDelivered', m.id);
    await completed.waitFor(m.id);
    expect(await messages.get(m.id)).toMatchObject({ status: 'delivered', attempts: 1, providerMessageId: 'SMdelivered' });
    const [request] = sendsOf('plain delivery');
    expect(request).toMatchObject({ method: 'POST', path: TWILIO_PATH, body: 'To=%2B5511999999999&From=%2B15005550006&Body=plain+delivery' });

    // A job that runs again after delivery (a worker died before finishing it) sends nothing.
    await messages.deliveries.enqueue(m.id, Date.now());
    await completed.waitFor(m.id, 2);
    expect(sendsOf('plain delivery')).toHaveLength(1);
    expect(feed.events(m.id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered']);
  });

  it('retries a transient error, then delivers: two sends, one record, attempts 2', async () => {
    script([twilioError(503, 20503, 'Service Unavailable'), { status: 201, body: twilioMessage('SMsecond') }]);
    const m = await messages.schedule({ message: 'transient then ok' });
    await feed.waitFor('messageDelivered', m.id);
    const record = await messages.get(m.id);
    expect(record).toMatchObject({ status: 'delivered', attempts: 2, providerMessageId: 'SMsecond', lastError: '20503: Service Unavailable' });
    const sends = sendsOf('transient then ok');
    expect(sends).toHaveLength(2);
    expect(sends[1]!.body).toBe(sends[0]!.body);
    expect(feed.events(m.id)).toEqual(['messageScheduled', 'messageSending', 'messageRetrying', 'messageSending', 'messageDelivered']);
    const delivered = await messages.store.list('default', 'delivered', { limit: 500 });
    expect(delivered.messages.filter((r) => r.id === m.id)).toHaveLength(1);
  });

  it('fails at once on a permanent error, with the provider code in lastError', async () => {
    script([twilioError(400, 21211, "Invalid 'To' Phone Number")]);
    const m = await messages.schedule({ message: 'permanent failure' });
    await feed.waitFor('messageFailed', m.id);
    expect(await messages.get(m.id)).toMatchObject({ status: 'failed', attempts: 1, lastError: "21211: Invalid 'To' Phone Number" });
    expect(sendsOf('permanent failure')).toHaveLength(1);
    expect(feed.events(m.id)).toEqual(['messageScheduled', 'messageSending', 'messageFailed']);
  });

  it('fails after DELIVERY_ATTEMPTS transient errors', async () => {
    script([{ status: 500, body: 'Internal Server Error' }]);
    const m = await messages.schedule({ message: 'always down' });
    await feed.waitFor('messageFailed', m.id);
    expect(await messages.get(m.id)).toMatchObject({ status: 'failed', attempts: 3, lastError: 'HTTP_500: Internal Server Error' });
    expect(sendsOf('always down')).toHaveLength(3);
  });

  it('slows down on a 429 without spending an attempt', async () => {
    const redis = new Redis(redisUrl());
    const throttled = async () => Number(await redis.hget(`{${prefix}-p0}:stats`, 'throttled:sms'));
    const before = await throttled();
    script([twilioError(429, 20429, 'Too Many Requests'), { status: 201, body: twilioMessage('SMafter429') }]);
    const m = await messages.schedule({ message: 'rate limited' });
    await feed.waitFor('messageDelivered', m.id);
    expect(await messages.get(m.id)).toMatchObject({ status: 'delivered', attempts: 1, providerMessageId: 'SMafter429', lastError: '20429: Too Many Requests' });
    expect(sendsOf('rate limited')).toHaveLength(2);
    expect(feed.events(m.id)).toEqual(['messageScheduled', 'messageSending', 'messageSending', 'messageDelivered']);
    expect(await throttled()).toBe(before + 1);
    redis.disconnect();
  });
});
