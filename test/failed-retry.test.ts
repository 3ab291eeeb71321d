import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHttpServer } from '../test-support/fake-http.js';
import { FeedWatcher, deletePrefix, uniquePrefix } from '../test-support/redis.js';
import { CompletedJobs, buildTestApp, startTestWorker } from '../test-support/apps.js';
import { twilioEnv, twilioError, twilioMessage } from '../test-support/providers.js';

const prefix = uniquePrefix('failed-retry');
let twilio: FakeHttpServer;
let feed: FeedWatcher;
let app: Awaited<ReturnType<typeof buildTestApp>>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let completed: CompletedJobs;

beforeAll(async () => {
  // Twilio refuses the first send for good, then accepts: the failure is fixed on its side (the
  // account enables the region). Not 21610: an unsubscribed recipient is opted out, and no retry helps.
  twilio = await FakeHttpServer.start((_request, n) =>
    n === 0 ? twilioError(400, 21408, 'Permission to send an SMS has not been enabled for the region') : { status: 201, body: twilioMessage('SMretried') },
  );
  feed = await FeedWatcher.start(prefix);
  app = await buildTestApp(prefix);
  worker = await startTestWorker(prefix, twilioEnv(twilio.url));
  completed = new CompletedJobs(worker.workers[0]!);
});
afterAll(async () => {
  completed.stop();
  await worker.close();
  await app.close();
  await feed.close();
  await twilio.close();
  await deletePrefix(prefix);
});

const listIds = async (status: 'failed' | 'delivered') =>
  ((await app.inject({ method: 'GET', url: `/${status}` })).json().messages as { id: string }[]).map((m) => m.id);

describe('failed messages', () => {
  it('lists a permanent failure under GET /failed and delivers it again on POST /failed/:id/retry', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/scheduled',
      payload: { recipient: '5511999999999', message: 'Your code is 1234', channel: 'sms', sendAt: Date.now() },
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json() as { id: string };
    await feed.waitFor('messageFailed', id);
    // The failed delivery's job must be gone before the retry queues a new one under the same id.
    await completed.waitFor(id);
    const failed = (await app.inject({ method: 'GET', url: '/failed' })).json().messages as Record<string, unknown>[];
    expect(failed.filter((m) => m.id === id)).toEqual([
      expect.objectContaining({ id, status: 'failed', attempts: 1, lastError: '21408: Permission to send an SMS has not been enabled for the region' }),
    ]);

    const retried = await app.inject({ method: 'POST', url: `/failed/${id}/retry` });
    expect(retried.statusCode).toBe(202);
    expect(retried.json()).toMatchObject({ success: true, data: { id, status: 'scheduled', attempts: 0 } });

    await feed.waitFor('messageDelivered', id);
    const record = (await app.inject({ method: 'GET', url: `/messages/${id}` })).json().data;
    expect(record).toMatchObject({ status: 'delivered', attempts: 1, providerMessageId: 'SMretried' });
    expect(await listIds('failed')).not.toContain(id);
    expect((await listIds('delivered')).filter((d) => d === id)).toHaveLength(1);
    expect(twilio.requests).toHaveLength(2);
    expect(twilio.requests[1]!.body).toBe(twilio.requests[0]!.body);

    const again = await app.inject({ method: 'POST', url: `/failed/${id}/retry` });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'MESSAGE_NOT_FAILED' });
  });
});
