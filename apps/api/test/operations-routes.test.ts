import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Redis } from 'ioredis';
import { MessageRecord } from '@punctual/shared';
import { WorkerHeartbeats, parseStored, startRedisServer, toRecord } from '@punctual/store';
import { buildTestApp } from '../../../test-support/apps.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('api-ops');
const ADMIN_API_KEY = 'admin-key-0123456789abcdef';
let app: FastifyInstance;
let redis: Redis;

beforeAll(async () => {
  app = await buildTestApp(prefix, { ADMIN_API_KEY });
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const payload = { recipient: '5511999999999', message: 'Hello from the API!', sendAt: Date.now() + 3_600_000, channel: 'whatsapp' };

describe('OpenAPI', () => {
  const routes = [
    'get /health', 'get /ready', 'get /metrics',
    'post /scheduled', 'get /scheduled', 'get /scheduled/{id}', 'put /scheduled/{id}', 'delete /scheduled/{id}',
    'get /delivered', 'get /failed', 'get /canceled', 'get /messages/{id}', 'post /failed/{id}/retry', 'get /ws',
    'put /suppressions/{channel}/{recipient}', 'get /suppressions/{channel}/{recipient}', 'get /suppressions', 'delete /suppressions/{channel}/{recipient}',
    'post /scheduled/batch', 'get /batches/{id}', 'delete /batches/{id}',
    'post /webhooks/twilio/status', 'post /webhooks/twilio/inbound', 'get /webhooks/whatsapp', 'post /webhooks/whatsapp',
  ];

  it('documents every route, with error responses and a security scheme, and is valid OpenAPI 3', async () => {
    const res = await app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const spec = res.json();
    const documented = Object.entries(spec.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual([...routes].sort());
    for (const route of routes) {
      const [method, path] = route.split(' ') as [string, string];
      expect(app.hasRoute({ method: method.toUpperCase() as 'GET', url: path.replace(/\{(\w+)\}/g, ':$1') })).toBe(true);
    }
    expect(Object.keys(spec.components.securitySchemes)).toEqual(['bearerAuth', 'apiKeyHeader']);
    expect(spec.paths['/health'].get.security).toEqual([]);
    const post = spec.paths['/scheduled'].post;
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '413', '415', '429', '503']));
    expect(post.responses['400'].content['application/json'].schema.required).toEqual(['statusCode', 'code', 'error', 'message']);
    expect(post.requestBody.content['application/json'].example).toEqual({
      recipient: '5511999999999',
      message: 'Hello from the API!',
      sendAt: '2026-12-24T18:00:00-03:00',
      channel: 'whatsapp',
    });
    expect(Object.keys(spec.paths['/scheduled/{id}'].put.responses)).toEqual(expect.arrayContaining(['404', '409']));
    await SwaggerParser.validate(structuredClone(spec));
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await app.inject({ url: '/docs' });
    const page = res.statusCode === 302 ? await app.inject({ url: new URL(res.headers.location!, 'http://x/docs/').pathname }) : res;
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('swagger');
  });

  it('response schemas serialise a record with every optional field unchanged', async () => {
    const created = (await app.inject({ method: 'POST', url: '/scheduled', payload })).json();
    const key = `{${prefix}-p0}:m:${created.id}`;
    const t = Date.now();
    const stored = parseStored((await redis.get(key))!);
    const full = {
      ...stored,
      template: JSON.stringify({ name: 'HX0123', language: 'pt_BR', variables: ['Ana', '42'] }),
      metadata: JSON.stringify({ order: 'A-1', amount: 12.5, vip: true, note: null }),
      callbackUrl: 'https://example.com/hook?x=1',
      deliveredAt: String(t), failedAt: String(t + 1), canceledAt: String(t + 2), nextAttemptAt: String(t + 3),
      cancelReason: 'opted_out',
      lastError: 'TWILIO_21610: "unsubscribed" \\ recipient',
      providerMessageId: 'SM0123456789abcdef',
      receiptStatus: 'undelivered', receiptAt: String(t + 4), receiptErrorCode: '30003',
      throttledAt: String(t + 5),
      encoding: 'UCS-2', segments: '3',
      batchId: '01KD0Q7Y5R8N3M2X4Z6B9C1D2E',
      timeZone: 'America/Sao_Paulo', quietHours: JSON.stringify({ start: '21:00', end: '08:00' }), requestedSendAt: String(t + 6),
      attempts: '3',
      version: '7',
    };
    await redis.set(key, JSON.stringify(full));
    const expected = toRecord(full);
    // every field the record's schema names, so none is dropped by the response serialiser
    expect(Object.keys(expected).sort()).toEqual(Object.keys(MessageRecord.properties).sort());
    expect(expected.receipt).toEqual({ status: 'undelivered', at: new Date(t + 4).toISOString(), errorCode: '30003' });
    const one = await app.inject({ url: `/messages/${created.id}` });
    expect(one.json()).toEqual({ success: true, data: expected });
    const page = (await app.inject({ url: '/scheduled?limit=500' })).json();
    expect(page.messages.find((m: { id: string }) => m.id === created.id)).toEqual(expected);
  });
});

describe('metrics', () => {
  const scrape = async () => {
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.body;
  };
  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('reports fleet-wide message counters that move exactly with what the API did', async () => {
    const before = await scrape();
    expect(before).toContain('# TYPE punctual_messages_total counter');
    expect(before).toContain('# TYPE punctual_delivery_lateness_seconds histogram');
    expect(value(before, 'punctual_messages_total{outcome="delivered",channel="sms"}')).toBe(0);
    const scheduledBefore = value(before, 'punctual_messages_total{outcome="scheduled",channel="sms"}')!;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await app.inject({ method: 'POST', url: '/scheduled', payload: { ...payload, channel: 'sms' } })).json().id);
    await app.inject({ method: 'DELETE', url: `/scheduled/${ids[0]}` });
    const after = await scrape();
    expect(value(after, 'punctual_messages_total{outcome="scheduled",channel="sms"}')).toBe(scheduledBefore + 3);
    expect(value(after, 'punctual_messages_total{outcome="canceled",channel="sms"}')).toBe(1);
    expect(value(after, 'punctual_queue_jobs{state="delayed"}')).toBeGreaterThanOrEqual(2);
    expect(value(after, 'punctual_delivery_lateness_seconds_count')).toBe(0);
    expect(value(after, 'punctual_delivery_lateness_seconds_bucket{le="+Inf"}')).toBe(0);
    expect(value(after, 'punctual_ws_clients')).toBe(0);
    const posts = 'punctual_http_request_duration_seconds_count{method="POST",route="/scheduled",status_code="201"}';
    expect(value(after, posts)).toBe((value(before, posts) ?? 0) + 3);
    expect(value(after, 'punctual_http_request_duration_seconds_count{method="DELETE",route="/scheduled/:id",status_code="200"}')).toBe(1);
    expect(after).toContain('process_resident_memory_bytes');
  });
});

describe('readiness', () => {
  it('is 503 while no worker has been seen, and 200 with queue counts once one beats', async () => {
    const notReady = await app.inject({ url: '/ready' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ status: 'not_ready', redis: 'connected', workers: 0, queues: { delayed: expect.any(Number) } });

    const heartbeats = new WorkerHeartbeats(redis, app.store.keys);
    await heartbeats.beat('test-worker');
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', redis: 'connected', workers: 1, queues: { delayed: expect.any(Number), waiting: 0 } });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/^punctual_workers 1$/m);

    await heartbeats.remove('test-worker');
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(503);
  });

  it('does not require workers with READY_REQUIRE_WORKER_MS=0', async () => {
    const open = await buildTestApp(prefix, { READY_REQUIRE_WORKER_MS: '0' });
    try {
      expect((await open.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('readiness without Redis', () => {
  it('flips to 503 when Redis stops, though a worker was seen', async () => {
    const server = await startRedisServer();
    const own = await buildTestApp(uniquePrefix('api-ops-down'), {}, server.url);
    const client = new Redis(server.url);
    try {
      await new WorkerHeartbeats(client, own.store.keys).beat('w1');
      expect((await own.inject({ url: '/ready' })).json()).toMatchObject({ status: 'ready', workers: 1 });
      client.disconnect();
      await server.stop();
      const down = await own.inject({ url: '/ready' });
      expect(down.statusCode).toBe(503);
      expect(down.json()).toEqual({ status: 'error', redis: 'disconnected' });
      // the scrape answers without the fleet's figures, saying Redis is away
      const metrics = await own.inject({ url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/^punctual_redis_up 0$/m);
    } finally {
      client.disconnect();
      await own.close();
      await server.stop();
    }
  });
});

describe('queue dashboard', () => {
  const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;

  it('is not there at all without ADMIN_API_KEY', async () => {
    const closed = await buildTestApp(prefix);
    try {
      const res = await closed.inject({ url: '/admin/queues' });
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('ROUTE_NOT_FOUND');
    } finally {
      await closed.close();
    }
  });

  it('needs the admin key (bearer, x-api-key or Basic password) and then shows the delivery queues', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'x-api-key': ADMIN_API_KEY.slice(1) }, { authorization: basic('nope') }]) {
      const res = await app.inject({ url: '/admin/queues', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic/);
      expect(res.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });
    }
    expect((await app.inject({ url: '/admin/queues/api/queues', headers: {} })).statusCode).toBe(401);
    for (const headers of [{ authorization: `Bearer ${ADMIN_API_KEY}` }, { 'x-api-key': ADMIN_API_KEY }, { authorization: basic(ADMIN_API_KEY) }]) {
      const page = await app.inject({ url: '/admin/queues', headers });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
    }
    const api = await app.inject({ url: '/admin/queues/api/queues', headers: { 'x-api-key': ADMIN_API_KEY } });
    expect(api.statusCode).toBe(200);
    expect(api.json().queues.map((q: { name: string }) => q.name)).toContain('deliveries');
  });
});
