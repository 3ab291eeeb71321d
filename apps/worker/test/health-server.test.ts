import type { Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createRedisConnection, freePort, startRedisServer, type RedisClient, type SpawnedRedis } from '@punctual/store';
import { crashRedis } from '../../../packages/store/src/testing.js';
import { waitUntil } from '../../../test-support/wait.js';
import { startHealthServer } from '../src/health-server.js';

let redis: SpawnedRedis;
let connection: RedisClient;
let server: Server;
let port: number;

beforeAll(async () => {
  redis = await startRedisServer();
  // the worker's own kind of connection: it waits for Redis (commands queue while it is away)
  connection = createRedisConnection({ url: redis.url }, 'worker');
  connection.on('error', () => {});
  await connection.connect();
  port = await freePort();
  server = await startHealthServer(connection, port, new Registry(), '127.0.0.1');
});
afterAll(async () => {
  server?.close();
  connection?.disconnect();
  await redis?.stop();
});

// a bound on the answer, not a timing measurement: before, a PING queued for the absent Redis hung
const health = () => fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });

it('answers /health 503 at once while Redis is down, and 200 again once it is back', async () => {
  const up = await health();
  expect(up.status).toBe(200);
  expect(await up.text()).toBe('{"status":"ok","redis":"connected"}');

  await crashRedis(redis);
  const down = await health();
  expect(down.status).toBe(503);
  expect(await down.text()).toBe('{"status":"error","redis":"disconnected"}');
  // the metrics of the process do not need Redis
  expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);

  redis = await startRedisServer({ port: redis.port });
  await waitUntil(async () => (await health()).status === 200, 'worker healthy again');
});
