import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';

const prefix = uniquePrefix('api-scheduled');
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildTestApp(prefix);
});
afterAll(async () => {
  await app.close();
  await deletePrefix(prefix);
});

const inAnHour = () => Date.now() + 3_600_000;
const body = (over: Record<string, unknown> = {}) => ({
  recipient: '5511999999999',
  message: 'Hello from the API!',
  sendAt: inAnHour(),
  channel: 'whatsapp',
  ...over,
});

async function create(over: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: body(over) });
  expect(res.statusCode).toBe(201);
  return res.json().data;
}

describe('POST /scheduled', () => {
  it('answers 201 with the seed envelope and the full record', async () => {
    const sendAt = inAnHour();
    const res = await app.inject({
      method: 'POST',
      url: '/scheduled',
      headers: { 'x-tenant-id': 'someone-else' },
      payload: body({ sendAt, metadata: { campaign: 'spring' } }),
    });
    expect(res.statusCode).toBe(201);
    const json = res.json();
    expect(json).toEqual({
      success: true,
      id: json.data.id,
      data: {
        id: json.id,
        recipient: '5511999999999',
        message: 'Hello from the API!',
        channel: 'whatsapp',
        sendAt,
        status: 'scheduled',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
        attempts: 0,
        version: 1,
        metadata: { campaign: 'spring' },
      },
    });
    expect(json.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Date(json.data.createdAt).toISOString()).toBe(json.data.createdAt);
    // the x-tenant-id header selects nothing: the message is the default tenant's
    expect((await app.inject({ url: `/scheduled/${json.id}` })).statusCode).toBe(200);
  });

  it('accepts an ISO-8601 sendAt with an offset and answers epoch ms', async () => {
    const utc = new Date(Math.floor(Date.now() / 1000) * 1000 + 10 * 86_400_000);
    const local = new Date(utc.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const record = await create({ sendAt: local });
    expect(record.sendAt).toBe(utc.getTime());
  });

  it('accepts a sendAt in the past (delivered immediately)', async () => {
    const record = await create({ sendAt: 0 });
    expect(record.sendAt).toBe(0);
  });

  it('orders ids by creation time', async () => {
    const a = await create();
    const b = await create();
    expect(a.id < b.id).toBe(true);
  });
});

describe('GET /scheduled', () => {
  it('lists by sendAt with cursor paging and filters', async () => {
    const base = Date.now() + 86_400_000 * 30;
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create({ sendAt: base + i, recipient: '+4915112345678', channel: i % 2 ? 'sms' : 'whatsapp' }));
    const ids: string[] = [];
    let url = `/scheduled?limit=2&recipient=%2B4915112345678`;
    for (;;) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      const page = res.json();
      ids.push(...page.messages.map((m: { id: string }) => m.id));
      if (!page.nextCursor) break;
      url = `/scheduled?limit=2&recipient=%2B4915112345678&cursor=${page.nextCursor}`;
    }
    expect(ids).toEqual(made.map((m) => m.id));
    const sms = (await app.inject({ url: `/scheduled?channel=sms&recipient=4915112345678` })).json();
    expect(sms.messages.map((m: { id: string }) => m.id)).toEqual([made[1].id, made[3].id]);
    const window = (await app.inject({ url: `/scheduled?from=${base + 1}&to=${new Date(base + 2).toISOString()}` })).json();
    expect(window.messages.map((m: { id: string }) => m.id)).toEqual([made[1].id, made[2].id]);
  });

  it('defaults to 100 per page', async () => {
    const res = await app.inject({ url: '/scheduled' });
    expect(res.json().messages.length).toBeLessThanOrEqual(100);
  });
});

describe('PUT /scheduled/:id', () => {
  it('changes any field and moves the delivery time', async () => {
    const record = await create();
    const sendAt = inAnHour() + 60_000;
    const res = await app.inject({
      method: 'PUT',
      url: `/scheduled/${record.id}`,
      payload: { message: 'Updated message', channel: 'sms', sendAt, recipient: '+5511988887777', metadata: { a: 1 } },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ message: 'Updated message', channel: 'sms', sendAt, recipient: '+5511988887777', version: 2, metadata: { a: 1 } });
    const queue = app.deliveries.of(record.id);
    const score = await (await queue.client).zscore(queue.keys.delayed!, record.id);
    // the delayed job now fires at the new time (BullMQ scores are timestamp·4096 + counter)
    expect(Math.abs(Math.floor(Number(score) / 4096) - sendAt)).toBeLessThan(1000);
    expect((await app.inject({ url: `/scheduled/${record.id}` })).json().data.message).toBe('Updated message');
  });

  it('swaps a text for a template and back', async () => {
    const record = await create();
    const template = { name: 'appt_reminder', language: 'en_US', variables: ['Alex'] };
    const withTemplate = await app.inject({ method: 'PUT', url: `/scheduled/${record.id}`, payload: { template } });
    expect(withTemplate.json().data).toMatchObject({ template });
    expect(withTemplate.json().data.message).toBeUndefined();
    const toSms = await app.inject({ method: 'PUT', url: `/scheduled/${record.id}`, payload: { channel: 'sms' } });
    expect(toSms.statusCode).toBe(400);
  });

  it('honours If-Match: the current version changes it, another one is a 412 that changes nothing', async () => {
    const record = await create();
    const got = await app.inject({ url: `/scheduled/${record.id}` });
    expect(got.headers.etag).toBe('"1"');
    const put = (ifMatch: string, message: string) =>
      app.inject({ method: 'PUT', url: `/scheduled/${record.id}`, headers: { 'if-match': ifMatch }, payload: { message } });
    const changed = await put('"1"', 'first');
    expect(changed.statusCode).toBe(200);
    expect(changed.headers.etag).toBe('"2"');
    const stale = await put('"1"', 'second');
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({ statusCode: 412, code: 'VERSION_MISMATCH', error: 'Precondition Failed' });
    expect((await app.inject({ url: `/scheduled/${record.id}` })).json().data).toMatchObject({ message: 'first', version: 2 });
    expect((await put('2', 'third')).statusCode).toBe(200);
    expect((await put('*', 'fourth')).statusCode).toBe(200);
    expect((await put('W/"abc"', 'fifth')).json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR' });
  });

  it('honours If-Match on DELETE: a stale version is a 412 and the message stays scheduled', async () => {
    const record = await create();
    expect((await app.inject({ method: 'PUT', url: `/scheduled/${record.id}`, payload: { message: 'changed' } })).statusCode).toBe(200);
    const stale = await app.inject({ method: 'DELETE', url: `/scheduled/${record.id}`, headers: { 'if-match': '"1"' } });
    expect(stale.json()).toMatchObject({ statusCode: 412, code: 'VERSION_MISMATCH', error: 'Precondition Failed' });
    expect((await app.inject({ url: `/scheduled/${record.id}` })).json().data).toMatchObject({ status: 'scheduled', version: 2 });
    const current = await app.inject({ method: 'DELETE', url: `/scheduled/${record.id}`, headers: { 'if-match': '"2"' } });
    expect(current.json()).toEqual({ success: true, id: record.id });
  });

  it('never lets concurrent PUTs build a record a single PUT would refuse (template on SMS)', async () => {
    const template = { name: 'appt_reminder', language: 'en_US' };
    const records = await Promise.all(Array.from({ length: 15 }, () => create({ channel: 'whatsapp' })));
    await Promise.all(
      records.flatMap((r) => [
        app.inject({ method: 'PUT', url: `/scheduled/${r.id}`, payload: { channel: 'sms' } }),
        app.inject({ method: 'PUT', url: `/scheduled/${r.id}`, payload: { template } }),
      ]),
    );
    for (const r of records) {
      const data = (await app.inject({ url: `/scheduled/${r.id}` })).json().data;
      expect(data.template !== undefined && data.channel === 'sms', JSON.stringify(data)).toBe(false);
    }
  });

  it('answers 409 once the message is canceled, and changes nothing', async () => {
    const record = await create();
    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${record.id}` })).json()).toEqual({ success: true, id: record.id });
    const put = await app.inject({ method: 'PUT', url: `/scheduled/${record.id}`, payload: { message: 'late' } });
    expect(put.statusCode).toBe(409);
    expect(put.json()).toMatchObject({ statusCode: 409, code: 'MESSAGE_NOT_SCHEDULED', error: 'Conflict' });
    const del = await app.inject({ method: 'DELETE', url: `/scheduled/${record.id}` });
    expect(del.statusCode).toBe(409);
    const after = (await app.inject({ url: `/messages/${record.id}` })).json().data;
    expect(after).toMatchObject({ status: 'canceled', message: 'Hello from the API!' });
    expect(after.canceledAt).toEqual(expect.any(String));
  });
});

describe('DELETE /scheduled/:id', () => {
  it('cancels: the record says canceled, the job is gone, the lists agree', async () => {
    const record = await create();
    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${record.id}` })).statusCode).toBe(200);
    expect(await app.deliveries.of(record.id).getJob(record.id)).toBeUndefined();
    const canceled = (await app.inject({ url: '/canceled?limit=500' })).json().messages.map((m: { id: string }) => m.id);
    expect(canceled).toContain(record.id);
    const scheduled = (await app.inject({ url: '/scheduled?limit=500' })).json().messages.map((m: { id: string }) => m.id);
    expect(scheduled).not.toContain(record.id);
  });
});

describe('GET /messages/:id and retry', () => {
  it('finds a message in any state; retry of a message that is not failed is 409', async () => {
    const record = await create();
    expect((await app.inject({ url: `/messages/${record.id}` })).json()).toEqual({ success: true, data: record });
    const retry = await app.inject({ method: 'POST', url: `/failed/${record.id}/retry` });
    expect(retry.statusCode).toBe(409);
    expect(retry.json().code).toBe('MESSAGE_NOT_FAILED');
  });
});

describe('health', () => {
  it('GET /health is exactly the contract', async () => {
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('{"status":"ok","redis":"connected"}');
  });

  it('GET /ready reports queue counts (503: no worker runs in this test)', async () => {
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', redis: 'connected', queues: { delayed: expect.any(Number) }, workers: 0 });
  });
});
