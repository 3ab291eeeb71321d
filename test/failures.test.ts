import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, startTestWorker } from '../test-support/apps.js';
import { FeedWatcher, deletePrefix, uniquePrefix } from '../test-support/redis.js';

const prefix = uniquePrefix('e2e-failures');
let app: FastifyInstance;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let feed: FeedWatcher;

beforeAll(async () => {
  app = await buildTestApp(prefix);
  worker = await startTestWorker(prefix, { SIMULATED_FAILURE_RATE: '1' });
  feed = await FeedWatcher.start(prefix);
});
afterAll(async () => {
  await worker.close();
  await app.close();
  await feed.close();
  await deletePrefix(prefix);
});

it('a simulated failure ends failed with lastError, listed under /failed', async () => {
  const res = await app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient: '+5511999999999', message: 'Hi', sendAt: Date.now(), channel: 'sms' },
  });
  const { id } = res.json();
  await feed.waitFor('messageFailed', id);
  const record = (await app.inject({ url: `/messages/${id}` })).json().data;
  expect(record).toMatchObject({ status: 'failed', attempts: 1, lastError: expect.stringMatching(/^SIMULATED_FAILURE/) });
  expect(record.failedAt).toEqual(expect.any(String));
  expect(record.deliveredAt).toBeUndefined();
  const failed = (await app.inject({ url: '/failed' })).json().messages.map((m: { id: string }) => m.id);
  expect(failed).toEqual([id]);
});
