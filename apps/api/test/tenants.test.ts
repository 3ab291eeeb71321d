import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('tenants');
const tenants = { a: bearer(KEY_A), b: bearer(KEY_B) };
type Tenant = keyof typeof tenants;
const other = (t: Tenant): Tenant => (t === 'a' ? 'b' : 'a');

let app: FastifyInstance;
let redis: Redis;
/** Each tenant's messages by the state they were brought to. */
const owned: Record<Tenant, Record<'scheduled' | 'canceled' | 'delivered' | 'failed', string[]>> = {
  a: { scheduled: [], canceled: [], delivered: [], failed: [] },
  b: { scheduled: [], canceled: [], delivered: [], failed: [] },
};

async function create(t: Tenant, over: Record<string, unknown> = {}): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/scheduled', headers: tenants[t], payload: newMessage(over) });
  expect(response.statusCode).toBe(201);
  return response.json().id;
}

/** Every message of a list, page by page, following nextCursor. */
async function listAll(t: Tenant, list: string, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const url = `/${list}?limit=2${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const response = await app.inject({ url, headers: tenants[t] });
    expect(response.statusCode).toBe(200);
    const page = response.json() as { messages: { id: string }[]; nextCursor: string | null };
    ids.push(...page.messages.map((m) => m.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' });
  for (const t of ['a', 'b'] as const) {
    for (let i = 0; i < 5; i++) owned[t].scheduled.push(await create(t, { sendAt: Date.now() + 60_000 * (i + 1) }));
    for (let i = 0; i < 3; i++) {
      const id = await create(t);
      expect((await app.inject({ method: 'DELETE', url: `/scheduled/${id}`, headers: tenants[t] })).statusCode).toBe(200);
      owned[t].canceled.push(id);
    }
    // no worker runs here: the store's own transitions stand in for deliveries
    for (const outcome of ['delivered', 'failed'] as const) {
      for (let i = 0; i < 3; i++) {
        const id = await create(t, { sendAt: Date.now() - 1000 });
        expect((await app.store.claim(id, Date.now())).outcome).toBe('claimed');
        if (outcome === 'delivered') await app.store.markDelivered(id, Date.now(), `SM${i}`, 5);
        else await app.store.markFailed(id, Date.now(), 'PERMANENT: test');
        owned[t][outcome].push(id);
      }
    }
  }
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('two tenants', () => {
  it('each sees only its own messages in every list, through every page', async () => {
    for (const t of ['a', 'b'] as const) {
      for (const list of ['scheduled', 'canceled', 'delivered', 'failed'] as const) {
        expect((await listAll(t, list)).sort()).toEqual([...owned[t][list]].sort());
      }
    }
  });

  it('filters never reach across tenants (same recipient and channel)', async () => {
    for (const t of ['a', 'b'] as const) {
      const ids = await listAll(t, 'scheduled', '&recipient=5511999999999&channel=sms');
      expect(ids.sort()).toEqual([...owned[t].scheduled].sort());
    }
  });

  it("another tenant's cursor is only a position: the page holds the caller's messages", async () => {
    for (const list of ['scheduled', 'canceled', 'delivered', 'failed'] as const) {
      const pageOfA = (await app.inject({ url: `/${list}?limit=1`, headers: tenants.a })).json();
      expect(pageOfA.nextCursor).toEqual(expect.any(String));
      const withForeignCursor = await app.inject({ url: `/${list}?limit=500&cursor=${pageOfA.nextCursor}`, headers: tenants.b });
      expect(withForeignCursor.statusCode).toBe(200);
      for (const m of withForeignCursor.json().messages) expect(owned.b[list]).toContain(m.id);
    }
  });

  it("answers 404 for another tenant's message on every route, and changes nothing", async () => {
    const before = await fingerprint(redis, prefix);
    for (const t of ['a', 'b'] as const) {
      const headers = tenants[other(t)];
      const all = Object.values(owned[t]).flat();
      for (const id of all) {
        const requests = [
          { method: 'GET' as const, url: `/scheduled/${id}` },
          { method: 'GET' as const, url: `/messages/${id}` },
          { method: 'PUT' as const, url: `/scheduled/${id}`, payload: { message: 'taken over', sendAt: Date.now() + 1000 } },
          { method: 'DELETE' as const, url: `/scheduled/${id}` },
          { method: 'POST' as const, url: `/failed/${id}/retry` },
        ];
        for (const request of requests) {
          const response = await app.inject({ ...request, headers });
          expect(response.statusCode, `${request.method} ${request.url}`).toBe(404);
          expect(response.json()).toEqual({
            statusCode: 404,
            code: 'MESSAGE_NOT_FOUND',
            error: 'Not Found',
            message: `Message ${id} not found`,
          });
        }
      }
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('lets the owner do what the other tenant could not', async () => {
    const [id] = owned.a.failed;
    const retried = await app.inject({ method: 'POST', url: `/failed/${id}/retry`, headers: tenants.a });
    expect(retried.statusCode).toBe(202);
    expect(retried.json().data.status).toBe('scheduled');
    const updated = await app.inject({ method: 'PUT', url: `/scheduled/${owned.a.scheduled[0]}`, headers: tenants.a, payload: { message: 'mine' } });
    expect(updated.statusCode).toBe(200);
    expect((await app.inject({ url: `/messages/${owned.a.scheduled[0]}`, headers: tenants.b })).statusCode).toBe(404);
  });
});
