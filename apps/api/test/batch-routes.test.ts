import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('api-batches');
const a = bearer(KEY_A);
const b = bearer(KEY_B);
let app: FastifyInstance;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' });
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const recipient = (i: number) => `1555${String(i).padStart(7, '0')}`;
const postBatch = (messages: unknown[], headers: Record<string, string> = a, api = app) =>
  api.inject({ method: 'POST', url: '/scheduled/batch', headers, payload: { messages } });

async function listAll(query: string, headers = a): Promise<{ id: string }[]> {
  const found: { id: string }[] = [];
  let cursor: string | null = null;
  do {
    const res = await app.inject({ url: `/scheduled?limit=3&${query}${cursor ? `&cursor=${cursor}` : ''}`, headers });
    expect(res.statusCode).toBe(200);
    found.push(...res.json().messages);
    cursor = res.json().nextCursor;
  } while (cursor);
  return found;
}

describe('POST /scheduled/batch', () => {
  it('answers each item as a single POST would: bad items get their 400 body, the others are created', async () => {
    const items = [
      newMessage({ recipient: recipient(1) }),
      newMessage({ recipient: 'not-a-number' }),
      newMessage({ recipient: recipient(3), channel: 'sms', template: { name: 'hello', language: 'en_US' }, message: undefined }),
      newMessage({ recipient: recipient(4), sendAt: '2027-03-14T09:00:00' }),
      newMessage({ recipient: recipient(5), timeZone: 'Mars/Olympus_Mons', sendAt: '2027-03-14T09:00:00' }),
      'not even an object',
      newMessage({ recipient: recipient(7), metadata: { campaign: 'spring' } }),
    ];
    const res = await postBatch(items);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ batchId: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/), accepted: 2, rejected: 5 });
    expect(body.results.map((r: { index: number; status: number }) => [r.index, r.status])).toEqual([
      [0, 201], [1, 400], [2, 400], [3, 400], [4, 400], [5, 400], [6, 201],
    ]);
    for (const [index, item] of items.entries()) {
      const result = body.results[index];
      if (result.status === 201) continue;
      const single = await app.inject({ method: 'POST', url: '/scheduled', headers: { ...a, 'content-type': 'application/json' }, payload: JSON.stringify(item) });
      expect(single.statusCode).toBe(result.status);
      expect(result.error).toEqual(single.json());
    }
    const created = body.results.filter((r: { status: number }) => r.status === 201);
    for (const { id, index } of created) {
      const record = (await app.inject({ url: `/scheduled/${id}`, headers: a })).json().data;
      expect(record).toMatchObject({ status: 'scheduled', batchId: body.batchId, recipient: recipient(index + 1) });
    }
    expect((await app.inject({ url: `/batches/${body.batchId}`, headers: a })).json()).toEqual({
      id: body.batchId,
      createdAt: expect.any(String),
      total: 2,
      counts: { scheduled: 2, sending: 0, delivered: 0, failed: 0, canceled: 0 },
    });
  });

  it('answers an item to a suppressed recipient with the 422 a single POST would get', async () => {
    const optedOut = '15557000001';
    expect((await app.inject({ method: 'PUT', url: `/suppressions/sms/${optedOut}`, headers: a })).statusCode).toBe(201);
    const items = [newMessage({ recipient: `+${optedOut}` }), newMessage({ recipient: recipient(7001) })];
    const single = await app.inject({ method: 'POST', url: '/scheduled', headers: a, payload: items[0] });
    expect(single.statusCode).toBe(422);
    const res = (await postBatch(items)).json();
    expect(res).toMatchObject({ accepted: 1, rejected: 1 });
    expect(res.results[0]).toEqual({ index: 0, status: 422, error: single.json() });
    expect(res.results[1]).toMatchObject({ index: 1, status: 201 });
    // another tenant's list does not refuse this tenant's items
    expect((await postBatch([items[0]], b)).json()).toMatchObject({ accepted: 1, rejected: 0 });
  });

  it('refuses none or more than 1,000 items, and anything but {messages}, with nothing stored', async () => {
    const before = await fingerprint(redis, prefix);
    for (const payload of [{ messages: [] }, { messages: Array.from({ length: 1001 }, () => newMessage()) }, { messages: newMessage() }, {}, { messages: [newMessage()], extra: 1 }]) {
      const res = await app.inject({ method: 'POST', url: '/scheduled/batch', headers: a, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('takes 1,000 items and bodies up to 4 MB on this route only', async () => {
    const long = 'x'.repeat(4000);
    const items = Array.from({ length: 1000 }, (_, i) => newMessage({ recipient: recipient(i), message: long }));
    const big = JSON.stringify({ messages: items });
    expect(big.length).toBeGreaterThan(4_000_000);
    expect(big.length).toBeLessThan(4 * 1024 * 1024);
    const res = await app.inject({ method: 'POST', url: '/scheduled/batch', headers: { ...a, 'content-type': 'application/json' }, payload: big });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 1000, rejected: 0 });
    const { batchId } = res.json();
    expect((await app.inject({ url: `/batches/${batchId}`, headers: a })).json()).toMatchObject({ total: 1000, counts: { scheduled: 1000 } });
    expect((await app.inject({ method: 'DELETE', url: `/batches/${batchId}`, headers: a })).json()).toEqual({ canceled: 1000 });

    const over = JSON.stringify({ messages: items.map((m) => ({ ...m, message: 'y'.repeat(4096), metadata: { pad: 'z'.repeat(200) } })) });
    expect(over.length).toBeGreaterThan(4 * 1024 * 1024);
    const tooBig = await app.inject({ method: 'POST', url: '/scheduled/batch', headers: { ...a, 'content-type': 'application/json' }, payload: over });
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: `Body is larger than ${4 * 1024 * 1024} bytes` });
    // other routes keep 64 KB
    const single = await app.inject({ method: 'POST', url: '/scheduled', headers: a, payload: { ...newMessage(), metadata: { pad: 'z'.repeat(70_000) } } });
    expect(single.statusCode).toBe(413);
  });

  it('replays the whole batch for the same Idempotency-Key and body, and refuses the key with another body', async () => {
    const items = [newMessage({ recipient: recipient(100) }), newMessage({ recipient: 'bad' }), newMessage({ recipient: recipient(102) })];
    const headers = { ...a, 'idempotency-key': 'campaign-42' };
    const first = await postBatch(items, headers);
    expect(first.statusCode).toBe(200);
    const again = await postBatch(items, headers);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);
    expect(await listAll(`batchId=${first.json().batchId}`)).toHaveLength(2);
    const other = await postBatch(items.slice(0, 1), headers);
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('documents the routes in the OpenAPI spec', async () => {
    const spec = (await app.inject({ url: '/openapi.json' })).json();
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/scheduled/batch', '/batches/{id}']));
    expect(Object.keys(spec.paths['/batches/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
  });
});

describe('GET and DELETE /batches/:id, GET /scheduled?batchId=', () => {
  it('lists a batch page by page, by channel, and refuses batchId with recipient', async () => {
    const items = Array.from({ length: 8 }, (_, i) => newMessage({ recipient: recipient(200 + i), channel: i % 2 ? 'whatsapp' : 'sms', sendAt: Date.now() + 3_600_000 + i }));
    const { batchId, results } = (await postBatch(items)).json();
    await postBatch([newMessage()]);
    expect((await listAll(`batchId=${batchId}`)).map((m) => m.id)).toEqual(results.map((r: { id: string }) => r.id));
    expect((await listAll(`batchId=${batchId}&channel=whatsapp`)).map((m) => m.id)).toEqual(results.filter((_: unknown, i: number) => i % 2).map((r: { id: string }) => r.id));
    const both = await app.inject({ url: `/scheduled?batchId=${batchId}&recipient=${recipient(200)}`, headers: a });
    expect(both.statusCode).toBe(400);
    expect((await app.inject({ url: '/scheduled?batchId=not-an-id', headers: a })).statusCode).toBe(400);
  });

  it('another tenant sees no such batch: 404 on GET, DELETE and the list, nothing canceled', async () => {
    const { batchId } = (await postBatch([newMessage(), newMessage()])).json();
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: `/batches/${batchId}`, headers: b });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'BATCH_NOT_FOUND', error: 'Not Found' });
    }
    expect((await app.inject({ url: `/scheduled?batchId=${batchId}`, headers: b })).json()).toMatchObject({ statusCode: 404, code: 'BATCH_NOT_FOUND' });
    expect((await app.inject({ url: `/batches/${batchId}`, headers: a })).json()).toMatchObject({ counts: { scheduled: 2 } });
  });

  it('an unknown or malformed id is a 404', async () => {
    for (const id of ['01KD0Q7Y5R8N3M2X4Z6B9C1D2E', 'nope', 'x'.repeat(300)]) {
      for (const method of ['GET', 'DELETE'] as const) {
        const res = await app.inject({ method, url: `/batches/${id}`, headers: a });
        expect(res.statusCode).toBe(404);
        expect(res.json().code).toBe('BATCH_NOT_FOUND');
      }
      if (id.length === 26) expect((await app.inject({ url: `/scheduled?batchId=${id}`, headers: a })).json()).toMatchObject({ statusCode: 404, code: 'BATCH_NOT_FOUND' });
    }
  });

  it('DELETE cancels what is still scheduled, each with its event, and says how many', async () => {
    const { batchId, results } = (await postBatch([newMessage(), newMessage(), newMessage()])).json();
    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${results[0].id}`, headers: a })).statusCode).toBe(200);
    const res = await app.inject({ method: 'DELETE', url: `/batches/${batchId}`, headers: a });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ canceled: 2 });
    for (const { id } of results) expect((await app.inject({ url: `/messages/${id}`, headers: a })).json().data.status).toBe('canceled');
    expect((await app.inject({ url: `/batches/${batchId}`, headers: a })).json()).toMatchObject({ total: 3, counts: { scheduled: 0, canceled: 3 } });
    expect((await app.inject({ method: 'DELETE', url: `/batches/${batchId}`, headers: a })).json()).toEqual({ canceled: 0 });
  });
});

describe('the tenant cap counts each item', () => {
  const capped = uniquePrefix('api-batches-cap');
  let api: FastifyInstance;
  beforeAll(async () => {
    api = await buildTestApi(capped, { MAX_SCHEDULED_PER_TENANT: '4', QUEUE_PARTITIONS: '3' });
  });
  afterAll(async () => {
    await api.close();
    await deletePrefix(capped);
  });

  it('reached mid-batch: the items past it get the 429 a single POST would get, the others are created', async () => {
    expect((await api.inject({ method: 'POST', url: '/scheduled', payload: newMessage() })).statusCode).toBe(201);
    const items = [newMessage(), newMessage({ recipient: 'bad' }), newMessage(), newMessage(), newMessage(), newMessage()];
    const res = await postBatch(items, {}, api);
    expect(res.statusCode).toBe(200);
    const { results, accepted, rejected, batchId } = res.json();
    expect(results.map((r: { status: number }) => r.status)).toEqual([201, 400, 201, 201, 429, 429]);
    expect([accepted, rejected]).toEqual([3, 3]);
    const single = await api.inject({ method: 'POST', url: '/scheduled', payload: newMessage() });
    expect(single.statusCode).toBe(429);
    expect(results[4].error).toEqual(single.json());
    expect((await api.inject({ url: `/batches/${batchId}` })).json()).toMatchObject({ total: 3, counts: { scheduled: 3 } });
  });
});

describe('on three partitions', () => {
  const partitioned = uniquePrefix('api-batches-p3');
  let api: FastifyInstance;
  beforeAll(async () => {
    api = await buildTestApi(partitioned, { QUEUE_PARTITIONS: '3' });
  });
  afterAll(async () => {
    await api.close();
    await deletePrefix(partitioned);
  });

  it('schedules, counts, lists and cancels a batch spread over every partition', async () => {
    const items = Array.from({ length: 60 }, (_, i) => newMessage({ recipient: recipient(300 + i), sendAt: Date.now() + 3_600_000 + (i % 5) }));
    const { batchId, results, accepted } = (await postBatch(items, {}, api)).json();
    expect(accepted).toBe(60);
    const tags = new Set<string>();
    for (const { id } of results) {
      const [key] = await redis.keys(`{${partitioned}-p*}:m:${id}`);
      tags.add(key!.slice(0, key!.indexOf('}') + 1));
    }
    expect(tags.size).toBe(3);
    expect((await api.inject({ url: `/batches/${batchId}` })).json()).toMatchObject({ total: 60, counts: { scheduled: 60 } });
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await api.inject({ url: `/scheduled?batchId=${batchId}&limit=7${cursor ? `&cursor=${cursor}` : ''}` })).json();
      listed.push(...page.messages.map((m: { id: string }) => m.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(listed.sort()).toEqual(results.map((r: { id: string }) => r.id).sort());
    expect((await api.inject({ method: 'DELETE', url: `/batches/${batchId}` })).json()).toEqual({ canceled: 60 });
    expect((await api.inject({ url: `/batches/${batchId}` })).json()).toMatchObject({ total: 60, counts: { scheduled: 0, canceled: 60 } });
  });
});
