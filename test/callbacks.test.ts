import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { QUEUES } from '../packages/shared/src/index.js';
import { FakeHttpServer, type RecordedRequest } from '../test-support/fake-http.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';
import { CompletedJobs, buildTestApp, startTestWorker } from '../test-support/apps.js';
import { twilioEnv, twilioError, twilioMessage } from '../test-support/providers.js';

const SECRET = 'whsec_test_0123456789';

/** The receiver's side, as the README documents it. */
function verifySignature(header: string | undefined, rawBody: string, secret: string, toleranceSeconds = 300): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const [, t, v1] = match;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const fresh = Math.abs(Date.now() / 1000 - Number(t)) <= toleranceSeconds;
  return fresh && timingSafeEqual(expected, Buffer.from(v1!, 'hex'));
}

interface Setup {
  prefix: string;
  twilio: FakeHttpServer;
  receiver: FakeHttpServer;
  feed: FeedWatcher;
  app: Awaited<ReturnType<typeof buildTestApp>>;
  worker: Awaited<ReturnType<typeof startTestWorker>>;
}

async function setUp(name: string, env: Record<string, string>): Promise<Setup> {
  const prefix = uniquePrefix(name);
  // Twilio refuses recipients ending in 0, accepts the rest.
  const twilio = await FakeHttpServer.start((request) =>
    new URLSearchParams(request.body).get('To')!.endsWith('0')
      ? twilioError(400, 21211, "Invalid 'To' Phone Number")
      : { status: 201, body: twilioMessage('SMcallback') },
  );
  const receiver = await FakeHttpServer.start();
  const feed = await FeedWatcher.start(prefix);
  const app = await buildTestApp(prefix);
  const worker = await startTestWorker(prefix, { ...twilioEnv(twilio.url), ...env });
  return { prefix, twilio, receiver, feed, app, worker };
}

async function tearDown(s: Setup) {
  await s.worker.close();
  await s.app.close();
  await s.feed.close();
  await s.receiver.close();
  await s.twilio.close();
  await deletePrefix(s.prefix);
}

async function schedule(s: Setup, recipient: string, callbackUrl: string): Promise<string> {
  const response = await s.app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient, message: 'Callback test', channel: 'sms', sendAt: Date.now(), callbackUrl, metadata: { order: 7 } },
  });
  expect(response.statusCode).toBe(201);
  return response.json().id;
}

const forMessage = (id: string) => (r: RecordedRequest) => JSON.parse(r.body).data.id === id;

describe('callbacks to an allowed private address (CALLBACK_ALLOW_PRIVATE=true)', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp('callbacks', { CALLBACK_SECRET: SECRET, CALLBACK_ALLOW_PRIVATE: 'true' });
  });
  afterAll(() => tearDown(s));

  it('posts messageDelivered, signed, and retries until the receiver answers 2xx', async () => {
    let calls = 0;
    s.receiver.respondWith(() => (calls++ === 0 ? { status: 503, body: 'busy' } : { status: 204 }));
    const id = await schedule(s, '5511999999999', `${s.receiver.url}/hooks/punctual?source=test`);
    const [first, second] = await s.receiver.waitForRequests(2, forMessage(id));
    const record = (await s.app.inject({ method: 'GET', url: `/messages/${id}` })).json().data;

    for (const request of [first!, second!]) {
      expect(request.method).toBe('POST');
      expect(request.path).toBe('/hooks/punctual?source=test');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['x-punctual-event']).toBe('messageDelivered');
      expect(verifySignature(request.headers['x-signature'] as string, request.body, SECRET)).toBe(true);
      expect(verifySignature(request.headers['x-signature'] as string, request.body, 'another secret')).toBe(false);
      expect(verifySignature(request.headers['x-signature'] as string, `${request.body} `, SECRET)).toBe(false);
      expect(JSON.parse(request.body)).toEqual({ event: 'messageDelivered', data: record });
    }
    expect(record).toMatchObject({ status: 'delivered', providerMessageId: 'SMcallback', metadata: { order: 7 } });
  });

  it('posts messageFailed with the provider reason', async () => {
    s.receiver.respondWith(() => ({ status: 200, body: { ok: true } }));
    const id = await schedule(s, '5511999999990', `${s.receiver.url}/failed-hook`);
    const [request] = await s.receiver.waitForRequests(1, forMessage(id));
    expect(verifySignature(request!.headers['x-signature'] as string, request!.body, SECRET)).toBe(true);
    expect(JSON.parse(request!.body)).toMatchObject({
      event: 'messageFailed',
      data: { id, status: 'failed', lastError: "21211: Invalid 'To' Phone Number" },
    });
  });
  it('queues a callback lost with a dying worker when the delivery job runs again, and never twice', async () => {
    s.receiver.respondWith(() => ({ status: 200 }));
    const callbacks = new Queue(QUEUES.callbacks.name, { connection: { url: redisUrl() }, prefix: `{${s.prefix}-p0}` });
    const completed = new CompletedJobs(s.worker.workers[0]!);
    const sentCallbacks = new CompletedJobs(s.worker.callbackWorkers[0]!);
    try {
      const id = await schedule(s, '5511999999997', `${s.receiver.url}/hook`);
      await s.receiver.waitForRequests(1, forMessage(id));
      await completed.waitFor(id);
      const record = (await s.app.inject({ method: 'GET', url: `/messages/${id}` })).json().data;
      const callbackJobId = `${id}-v${record.version}`;

      // Run again after delivery, callback already queued and sent: the job id deduplicates it.
      await sentCallbacks.waitFor(callbackJobId);
      const sent = (await callbacks.getJob(callbackJobId))!;
      await s.app.deliveries.enqueue(id, Date.now());
      await completed.waitFor(id, 2);
      expect(await callbacks.getJob(callbackJobId)).toMatchObject({ finishedOn: sent.finishedOn, attemptsMade: sent.attemptsMade });

      // The worker died between recording the delivery and queueing the callback: queued on re-run.
      await callbacks.remove(callbackJobId);
      await s.app.deliveries.enqueue(id, Date.now());
      const [, again] = await s.receiver.waitForRequests(2, forMessage(id));
      expect(JSON.parse(again!.body)).toEqual({ event: 'messageDelivered', data: record });
      expect(s.twilio.requests.filter((r) => new URLSearchParams(r.body).get('To') === '+5511999999997')).toHaveLength(1);
    } finally {
      completed.stop();
      sentCallbacks.stop();
      await callbacks.close();
    }
  });
});

describe('callbacks to a private address (CALLBACK_ALLOW_PRIVATE unset)', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp('callbacks-refused', { CALLBACK_SECRET: SECRET });
  });
  afterAll(() => tearDown(s));

  it('refuses 127.0.0.1 and localhost at send time, without retrying, and still delivers the message', async () => {
    const refusals = new Map<string, string>();
    const allRefused = new Promise<void>((resolve) =>
      s.worker.callbackWorkers[0]!.on('failed', (job, err) => {
        refusals.set(job!.data.record.id, `${err.name}: ${err.message}`);
        if (refusals.size === 2) resolve();
      }),
    );
    const port = new URL(s.receiver.url).port;
    const literal = await schedule(s, '5511999999999', `http://127.0.0.1:${port}/hook`);
    const named = await schedule(s, '5511999999998', `http://localhost:${port}/hook`);
    await allRefused;

    expect(refusals.get(literal)).toMatch(/^UnrecoverableError: callback refused: 127\.0\.0\.1, which is not a public address/);
    expect(refusals.get(named)).toMatch(/^UnrecoverableError: callback refused: localhost resolves to (127\.0\.0\.1|::1)/);
    expect(s.receiver.requests).toHaveLength(0);
    for (const id of [literal, named]) {
      expect((await s.app.inject({ method: 'GET', url: `/messages/${id}` })).json().data.status).toBe('delivered');
    }
  });
});
