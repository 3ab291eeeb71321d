import { afterAll, beforeAll, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES, type CallbackJobData } from '@punctual/shared';
import { Keyspace } from '@punctual/store';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { TestMessages } from '../../../test-support/messages.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { callbackJobOptions } from '@punctual/store';
import { waitUntil } from '../../../test-support/wait.js';

const prefix = uniquePrefix('worker-retention');
const keyspace = new Keyspace({ prefix, partitions: 1 });
/** 0.00002 days: about 1.7 s. */
const RETENTION_DAYS = '0.00002';

let accepting: FakeHttpServer;
let refusing: FakeHttpServer;
let messages: TestMessages;
let redis: Redis;
let queue: Queue<CallbackJobData>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;

beforeAll(async () => {
  accepting = await FakeHttpServer.start(() => ({ status: 204 }));
  refusing = await FakeHttpServer.start(() => ({ status: 500 }));
  messages = await TestMessages.create(prefix);
  redis = new Redis(redisUrl());
  queue = new Queue(QUEUES.callbacks.name, { connection: { url: redisUrl() }, prefix: keyspace.tag(0) });
  worker = await startTestWorker(prefix, { RETENTION_DAYS, RECONCILE_INTERVAL_MS: '100', CALLBACK_ALLOW_PRIVATE: 'true' });
});
afterAll(async () => {
  await worker.close();
  await queue.close();
  await messages.close();
  redis.disconnect();
  await accepting.close();
  await refusing.close();
  await deletePrefix(prefix);
});

it('deletes feed events and callback jobs (sent, failed, retrying) once RETENTION_DAYS has passed', async () => {
  const sent = await messages.schedule({ callbackUrl: `${accepting.url}/ok` });
  const retrying = await messages.schedule({ callbackUrl: `${refusing.url}/retry` });
  await accepting.waitForRequests(1);
  await refusing.waitForRequests(1);
  // a callback that ran out of attempts, as the last of its 15 would
  const record = { ...(await messages.get(sent.id)), callbackUrl: `${refusing.url}/failed` };
  const failed = await queue.add(QUEUES.callbacks.job, { event: 'messageDelivered', record, tenant: 'default' }, { jobId: 'failed-callback', attempts: 1 });
  await waitUntil(async () => (await failed.getState()) === 'failed', 'the failed callback job', { intervalMs: 100 });
  expect(await queue.getJob(`${sent.id}-v${(await messages.get(sent.id)).version}`)).toBeDefined();
  expect(await redis.xlen(keyspace.events(keyspace.tag(0)))).toBeGreaterThan(0);

  await waitUntil(async () => (await redis.xlen(keyspace.events(keyspace.tag(0)))) === 0, 'feed events trimmed', { intervalMs: 100 });
  await waitUntil(
    async () => Object.values(await queue.getJobCounts('completed', 'failed', 'delayed', 'wait', 'active')).every((n) => n === 0),
    'callback jobs removed',
    { intervalMs: 100 },
  );
  const retries = refusing.requests.filter((r) => r.path === '/retry');
  expect(retries.length).toBeGreaterThan(1);
  expect(JSON.parse(retries[0]!.body).data.id).toBe(retrying.id);
  expect(await queue.getJob(String(retries[0]!.headers['x-punctual-delivery-id']))).toBeUndefined();
}, 60_000);

it('keeps finished callback jobs no longer than the retention', () => {
  expect(callbackJobOptions(30 * 24 * 3600_000)).toMatchObject({ removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } });
  expect(callbackJobOptions(3600_000)).toMatchObject({ removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } });
});
