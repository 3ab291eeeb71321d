import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, startTestWorker } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';
import { FeedClient, listen, schedule } from './feed-client.js';

const prefix = uniquePrefix('ws-fleet');
let apiA: FastifyInstance;
let apiB: FastifyInstance;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let urlB: string;

beforeAll(async () => {
  apiA = await buildTestApp(prefix);
  apiB = await buildTestApp(prefix);
  await listen(apiA);
  urlB = await listen(apiB);
  worker = await startTestWorker(prefix);
});

afterAll(async () => {
  await worker?.close();
  await apiA?.close();
  await apiB?.close();
  await deletePrefix(prefix);
});

it("relays instance A's and the worker's events to a client on instance B, in order", async () => {
  const client = await FeedClient.connect(`${urlB}/ws`);

  const delivered = await schedule(apiA);
  const put = await apiA.inject({ method: 'PUT', url: `/scheduled/${delivered}`, payload: { sendAt: Date.now() } });
  expect(put.statusCode).toBe(200);
  const canceled = await schedule(apiA, { channel: 'whatsapp' });
  expect((await apiA.inject({ method: 'DELETE', url: `/scheduled/${canceled}` })).statusCode).toBe(200);

  const done = await client.waitForEvent('messageDelivered', delivered);
  await client.waitForEvent('messageDeleted', canceled);

  expect(client.eventsOf(delivered)).toEqual(['messageScheduled', 'messageUpdated', 'messageSending', 'messageDelivered']);
  expect(client.eventsOf(canceled)).toEqual(['messageScheduled', 'messageDeleted']);
  expect(done.data).toMatchObject({ id: delivered, status: 'delivered', attempts: 1, channel: 'sms' });
  expect(done.data?.deliveredAt).toEqual(expect.any(String));
  expect(client.frames.find((f) => f.event === 'messageDeleted')?.data).toMatchObject({ id: canceled, status: 'canceled', channel: 'whatsapp' });

  const ids = client.frames.map((f) => f.id!);
  expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  await client.close();
});

it('gives every instance the same events with the same ids', async () => {
  const onA = await FeedClient.inject(apiA, '/ws');
  const onB = await FeedClient.inject(apiB, '/ws');
  const id = await schedule(apiB);
  const [fromA, fromB] = await Promise.all([onA.waitForEvent('messageScheduled', id), onB.waitForEvent('messageScheduled', id)]);
  expect(fromA).toEqual(fromB);
  await Promise.all([onA.close(), onB.close()]);
});
