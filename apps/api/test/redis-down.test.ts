import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startRedisServer, type EmbeddedRedis } from '@punctual/store';
import { buildTestApp } from '../../../test-support/apps.js';
import { uniquePrefix } from '../../../test-support/redis.js';
import { waitUntil } from '../../../test-support/wait.js';

let redis: EmbeddedRedis;
let app: FastifyInstance;
const dataDir = mkdtempSync(join(tmpdir(), 'punctual-down-'));

beforeAll(async () => {
  redis = await startRedisServer({ dataDir });
  app = await buildTestApp(uniquePrefix('api-redis-down'), {}, redis.url);
});
afterAll(async () => {
  await app.close();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const payload = { recipient: '5511999999999', message: 'Hi', sendAt: Date.now() + 60_000, channel: 'sms' };

it('answers 503 fast while Redis is down, never a hang, a stack or a later write; recovers on its own', async () => {
  const first = await app.inject({ method: 'POST', url: '/scheduled', payload });
  expect(first.statusCode).toBe(201);
  const port = redis.port;
  await redis.stop();

  const health = await app.inject({ url: '/health' });
  expect(health.statusCode).toBe(503);
  // the scrape still answers, with this instance's figures and without the fleet's
  const down = await app.inject({ url: '/metrics' });
  expect(down.statusCode).toBe(200);
  expect(down.headers['content-type']).toMatch(/^text\/plain/);
  expect(down.body).toMatch(/^punctual_redis_up 0$/m);
  expect(down.body).toMatch(/^process_cpu_user_seconds_total /m);
  expect(down.body).not.toContain('punctual_messages_total');
  expect(health.body).toBe('{"status":"error","redis":"disconnected"}');
  expect((await app.inject({ url: '/ready' })).statusCode).toBe(503);

  const started = Date.now();
  const post = await app.inject({ method: 'POST', url: '/scheduled', payload });
  expect(post.statusCode).toBe(503);
  expect(post.json()).toEqual({
    statusCode: 503,
    code: 'REDIS_UNAVAILABLE',
    error: 'Service Unavailable',
    message: expect.any(String),
  });
  // a bound, not a timing measurement: the request must not wait for Redis to come back
  expect(Date.now() - started).toBeLessThan(5000);
  expect((await app.inject({ url: '/scheduled' })).statusCode).toBe(503);

  // the refused write is not replayed once Redis is back
  redis = await startRedisServer({ port, dataDir });
  await waitUntil(async () => (await app.inject({ url: '/health' })).statusCode === 200, 'API healthy again');
  const up = (await app.inject({ url: '/metrics' })).body;
  expect(up).toMatch(/^punctual_redis_up 1$/m);
  expect(up).toMatch(/^punctual_messages_total\{outcome="scheduled",channel="sms"\} 1$/m);
  const list = (await app.inject({ url: '/scheduled' })).json();
  expect(list.messages.map((m: { id: string }) => m.id)).toEqual([first.json().id]);
});
