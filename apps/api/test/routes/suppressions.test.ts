import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { applyInboundKeyword } from '@punctual/store';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from '../helpers.js';

const prefix = uniquePrefix('api-suppressions');
const logs: string[] = [];
let app: FastifyInstance;
let redis: Redis;

beforeAll(async () => {
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, QUEUE_PARTITIONS: '3' }, logs);
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

let phone = 4930100000000;
const newRecipient = () => String(++phone);

const as = (key: string) => ({
  put: (path: string) => app.inject({ method: 'PUT', url: path, headers: bearer(key) }),
  get: (path: string) => app.inject({ url: path, headers: bearer(key) }),
  del: (path: string) => app.inject({ method: 'DELETE', url: path, headers: bearer(key) }),
  post: (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/scheduled', headers: bearer(key), payload: body }),
  update: (id: string, body: Record<string, unknown>) => app.inject({ method: 'PUT', url: `/scheduled/${id}`, headers: bearer(key), payload: body }),
});
const a = as(KEY_A);
const b = as(KEY_B);

/**
 * Every key of the prefix with its value, but the rate limiter's counters (every request moves
 * them) and BullMQ's bookkeeping: a POST's job goes in the same MULTI as its record, so a refused
 * one is added and removed again, which leaves an event and the id counter behind (as a refusal
 * for the quota does).
 */
async function stored() {
  const all = await fingerprint(redis, prefix);
  for (const key of all.keys()) if (/:ratelimit:|:deliveries:(events|id|marker)$/.test(key)) all.delete(key);
  return all;
}

async function scheduled(client: ReturnType<typeof as>, over: Record<string, unknown>) {
  const res = await client.post(newMessage(over));
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; status: string };
}

describe("a tenant's suppression list", () => {
  it('PUT adds the recipient (201, then 200 with the first entry) and cancels its scheduled messages on that channel', async () => {
    const digits = newRecipient();
    const mine = [await scheduled(a, { recipient: digits }), await scheduled(a, { recipient: `+${digits}` }), await scheduled(a, { recipient: digits })];
    const whatsapp = await scheduled(a, { recipient: digits, channel: 'whatsapp' });
    const theirs = await scheduled(b, { recipient: digits });

    const created = await a.put(`/suppressions/sms/%2B${digits}`);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toEqual({
      success: true,
      canceled: 3,
      data: { channel: 'sms', recipient: digits, scope: 'tenant', source: 'api', createdAt: expect.any(String) },
    });
    const again = await a.put(`/suppressions/sms/${digits}`);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ ...created.json(), canceled: 0 });

    for (const m of mine) {
      expect((await a.get(`/messages/${m.id}`)).json().data).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    }
    expect((await a.get(`/messages/${whatsapp.id}`)).json().data.status).toBe('scheduled');
    expect((await b.get(`/messages/${theirs.id}`)).json().data.status).toBe('scheduled');
    const canceled = (await a.get(`/canceled?recipient=${digits}`)).json().messages.map((m: { id: string }) => m.id);
    expect(canceled.sort()).toEqual(mine.map((m) => m.id).sort());
  });

  it('GET one answers for any spelling, for its own tenant only; DELETE lifts it, for its own tenant only', async () => {
    const digits = newRecipient();
    expect((await a.put(`/suppressions/whatsapp/${digits}`)).statusCode).toBe(201);
    for (const spelling of [digits, `%2B${digits}`, `+${digits}`]) {
      const one = await a.get(`/suppressions/whatsapp/${spelling}`);
      expect(one.statusCode, spelling).toBe(200);
      expect(one.json().data).toMatchObject({ channel: 'whatsapp', recipient: digits, scope: 'tenant' });
    }
    const hidden = await b.get(`/suppressions/whatsapp/${digits}`);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json()).toMatchObject({ statusCode: 404, code: 'SUPPRESSION_NOT_FOUND', error: 'Not Found' });
    expect((await a.get(`/suppressions/sms/${digits}`)).statusCode).toBe(404);

    expect((await b.del(`/suppressions/whatsapp/${digits}`)).statusCode).toBe(404);
    expect((await a.get(`/suppressions/whatsapp/${digits}`)).statusCode).toBe(200);
    const removed = await a.del(`/suppressions/whatsapp/%2B${digits}`);
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toEqual({ success: true, channel: 'whatsapp', recipient: digits });
    expect((await a.get(`/suppressions/whatsapp/${digits}`)).statusCode).toBe(404);
    expect((await a.del(`/suppressions/whatsapp/${digits}`)).json()).toMatchObject({ code: 'SUPPRESSION_NOT_FOUND' });
  });

  it("POST, PUT and retry to a recipient on the tenant's list → 422 RECIPIENT_OPTED_OUT and nothing changes; other tenants are not affected", async () => {
    const digits = newRecipient();
    const elsewhere = await scheduled(a, { recipient: newRecipient() });
    expect((await a.put(`/suppressions/sms/${digits}`)).statusCode).toBe(201);
    const before = await stored();
    for (const recipient of [digits, `+${digits}`]) {
      const post = await a.post(newMessage({ recipient }));
      expect(post.statusCode).toBe(422);
      expect(post.json()).toMatchObject({ statusCode: 422, code: 'RECIPIENT_OPTED_OUT', error: 'Unprocessable Entity', message: expect.stringContaining("this tenant's suppression list") });
      const put = await a.update(elsewhere.id, { recipient });
      expect(put.statusCode).toBe(422);
      expect(put.json().code).toBe('RECIPIENT_OPTED_OUT');
    }
    expect(await stored()).toEqual(before);
    // another channel, and another tenant, may
    expect((await a.post(newMessage({ recipient: digits, channel: 'whatsapp' }))).statusCode).toBe(201);
    expect((await b.post(newMessage({ recipient: digits }))).statusCode).toBe(201);
    // once lifted, the tenant may again
    expect((await a.del(`/suppressions/sms/${digits}`)).statusCode).toBe(200);
    expect((await a.post(newMessage({ recipient: `+${digits}` }))).statusCode).toBe(201);
  });

  it('an Idempotency-Key POST refused with 422 is not replayed: the same request succeeds once the recipient may be messaged', async () => {
    const digits = newRecipient();
    await a.put(`/suppressions/sms/${digits}`);
    const body = newMessage({ recipient: digits });
    const post = () => app.inject({ method: 'POST', url: '/scheduled', headers: { ...bearer(KEY_A), 'idempotency-key': `opt-${digits}` }, payload: body });
    expect((await post()).statusCode).toBe(422);
    await a.del(`/suppressions/sms/${digits}`);
    expect((await post()).statusCode).toBe(201);
  });

  it('lists only its own entries, newest first, page by page', async () => {
    const own = as(KEY_B);
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const digits = newRecipient();
      expect((await own.put(`/suppressions/${i % 2 ? 'sms' : 'whatsapp'}/${digits}`)).statusCode).toBe(201);
      made.push(digits);
    }
    await a.put(`/suppressions/sms/${newRecipient()}`);
    await applyInboundKeyword(app.suppressions, { channel: 'sms', from: `+${newRecipient()}`, text: 'STOP' });
    const seen: { recipient: string; scope: string; createdAt: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await own.get(`/suppressions?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { suppressions: typeof seen; nextCursor: string | null };
      expect(body.suppressions.length).toBeLessThanOrEqual(3);
      seen.push(...body.suppressions);
      cursor = body.nextCursor;
      pages++;
    } while (cursor);
    const all = seen.map((s) => s.recipient);
    for (const digits of made) expect(all).toContain(digits);
    expect(new Set(all).size).toBe(all.length);
    expect(seen.every((s) => s.scope === 'tenant')).toBe(true);
    const times = seen.map((s) => Date.parse(s.createdAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect(pages).toBeGreaterThanOrEqual(3);
    // entries of tenant B only: A's and the deployment's stay out
    expect(all.length).toBe((await redis.zcard(`{${prefix}}:supp:t:tenant-b`)));
  });

  it('refuses a bad channel, recipient, query or cursor with 400, changing nothing', async () => {
    const before = await stored();
    for (const path of ['/suppressions/fax/5511999999999', '/suppressions/sms/123', '/suppressions/sms/abc', '/suppressions/sms/05511999999999', '/suppressions/sms/5511999999999x']) {
      for (const res of [await a.put(path), await a.get(path), await a.del(path)]) {
        expect(res.statusCode, path).toBe(400);
        expect(res.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', details: expect.any(Array) });
      }
    }
    expect((await a.get('/suppressions?limit=0')).statusCode).toBe(400);
    expect((await a.get('/suppressions?limit=501')).statusCode).toBe(400);
    expect((await a.get('/suppressions?color=red')).statusCode).toBe(400);
    expect((await a.put('/suppressions/sms/5511999999999?x=1')).statusCode).toBe(400);
    const bad = await a.get('/suppressions?cursor=bm90LWEtY3Vyc29y');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INVALID_CURSOR');
    expect(await stored()).toEqual(before);
    expect((await app.inject({ url: '/suppressions' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'PUT', url: '/suppressions/sms/5511999999999' })).statusCode).toBe(401);
  });
});

describe('a recipient who opted out (the deployment list)', () => {
  it('every tenant gets 422 and sees the opt-out of a number it asks about, cannot lift it, and START lifts it', async () => {
    const digits = newRecipient();
    const ofA = await scheduled(a, { recipient: digits });
    const ofB = await scheduled(b, { recipient: `+${digits}` });
    const failed = await scheduled(a, { recipient: digits, channel: 'whatsapp' });
    // make it a failed message, to retry later
    await app.scheduler.claim(failed.id, Date.now() + 7_200_000);
    await app.scheduler.fail(failed.id, Date.now(), '63016: outside the window');

    expect(await applyInboundKeyword(app.suppressions, { channel: 'sms', from: `+${digits}`, text: 'Stop' })).toEqual({ keyword: 'opt_out', changed: true });
    expect(await applyInboundKeyword(app.suppressions, { channel: 'whatsapp', from: digits, text: 'UNSUBSCRIBE' })).toEqual({ keyword: 'opt_out', changed: true });
    expect((await a.get(`/messages/${ofA.id}`)).json().data).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect((await b.get(`/messages/${ofB.id}`)).json().data).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });

    for (const client of [a, b]) {
      const post = await client.post(newMessage({ recipient: digits }));
      expect(post.statusCode).toBe(422);
      expect(post.json()).toMatchObject({ code: 'RECIPIENT_OPTED_OUT', message: expect.stringContaining('opted out of this channel') });
      const one = await client.get(`/suppressions/sms/%2B${digits}`);
      expect(one.json().data).toEqual({ channel: 'sms', recipient: digits, scope: 'deployment', source: 'inbound', createdAt: expect.any(String) });
      const lift = await client.del(`/suppressions/sms/${digits}`);
      expect(lift.statusCode).toBe(404);
      expect(lift.json().message).toContain('only they can lift');
      expect((await client.get('/suppressions?limit=500')).json().suppressions.map((s: { recipient: string }) => s.recipient)).not.toContain(digits);
    }
    const retry = await app.inject({ method: 'POST', url: `/failed/${failed.id}/retry`, headers: bearer(KEY_A) });
    expect(retry.statusCode).toBe(422);
    expect(retry.json().code).toBe('RECIPIENT_OPTED_OUT');

    expect(await applyInboundKeyword(app.suppressions, { channel: 'sms', from: digits, text: ' start ' })).toEqual({ keyword: 'opt_in', changed: true });
    expect((await b.post(newMessage({ recipient: digits }))).statusCode).toBe(201);
    expect((await a.get(`/suppressions/sms/${digits}`)).statusCode).toBe(404);
    // still opted out of WhatsApp
    expect((await app.inject({ method: 'POST', url: `/failed/${failed.id}/retry`, headers: bearer(KEY_A) })).statusCode).toBe(422);
    expect((await a.post(newMessage({ recipient: digits, channel: 'whatsapp' }))).statusCode).toBe(422);
  });

  it('counts opt-outs in punctual_optouts_total by channel and source', async () => {
    const value = async (labels: string) => {
      const text = (await app.inject({ url: '/metrics' })).body;
      const line = text.split('\n').find((l) => l.startsWith(`punctual_optouts_total{${labels}} `));
      return Number(line?.split(' ')[1]);
    };
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toContain('# TYPE punctual_optouts_total counter');
    const before = { inbound: await value('channel="whatsapp",source="inbound"'), api: await value('channel="whatsapp",source="api"') };
    const digits = newRecipient();
    await applyInboundKeyword(app.suppressions, { channel: 'whatsapp', from: digits, text: 'QUIT' });
    await applyInboundKeyword(app.suppressions, { channel: 'whatsapp', from: digits, text: 'QUIT' });
    await a.put(`/suppressions/whatsapp/${digits}`);
    expect(await value('channel="whatsapp",source="inbound"')).toBe(before.inbound + 1);
    expect(await value('channel="whatsapp",source="api"')).toBe(before.api + 1);
    expect(await value('channel="sms",source="provider"')).toBeGreaterThanOrEqual(0);
  });

  it('never logs the recipient of a suppression request', async () => {
    const digits = newRecipient();
    logs.length = 0;
    await a.put(`/suppressions/sms/%2B${digits}`);
    await a.put(`/suppressions/sms/+${digits}`);
    await a.get(`/suppressions/sms/${digits}`);
    await b.get(`/suppressions/sms/${digits}`);
    await a.del(`/suppressions/sms/${digits}`);
    await a.get(`/suppressions/sms/${digits}x`);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((line) => line.includes(digits))).toEqual([]);
    expect(logs.some((line) => line.includes('/suppressions/sms/[redacted]'))).toBe(true);
  });
});
