import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { CuttingProxy } from '../../../test-support/cutting-proxy.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, TWO_TENANTS, bearer, buildTestApi, newMessage } from './helpers.js';

/**
 * The same Idempotency-Key never creates two messages, also when the first request outlives its
 * claim or ends in a 503 after Redis ran its write.
 *
 * These need POST /scheduled to create its message with `request.idempotentMessageId` and to
 * answer with the existing message when the store refuses that id as already created (see the
 * idempotency plugin). Until the route does, they fail, so they are declared `it.fails`: flip
 * them to `it` with that change.
 */
const routeUsesTheClaimedId = it;

const prefix = uniquePrefix('idem-faults');
let proxy: CuttingProxy;
let app: FastifyInstance;
let redis: Redis;
let feed: FeedWatcher;
const gates = new Map<string, Promise<void>>();

const post = (idempotencyKey: string, body: object, extra: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/scheduled', headers: { ...bearer(KEY_A), 'idempotency-key': idempotencyKey, ...extra }, payload: body });

const idempotencyKey = (key: string) => app.store.keys.idempotency('tenant-a', createHash('sha256').update(key).digest('hex'));

/** What the lease of a claim looks like once its 30 s have passed: the request holding it is presumed gone. */
async function leaseRunsOut(key: string) {
  const stored = JSON.parse((await redis.get(idempotencyKey(key)))!) as { state: string; leaseUntil: number };
  expect(stored.state).toBe('pending');
  await redis.set(idempotencyKey(key), JSON.stringify({ ...stored, leaseUntil: 0 }), 'KEEPTTL');
}

async function messagesWith(text: string): Promise<string[]> {
  const page = (await app.inject({ url: '/scheduled?limit=500', headers: bearer(KEY_A) })).json();
  return page.messages.filter((m: { message: string }) => m.message === text).map((m: { id: string }) => m.id);
}

async function until(check: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  redis = new Redis(redisUrl());
  proxy = await CuttingProxy.start(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' }, undefined, proxy.url);
  // after the idempotency claim, before the route: a request told to wait there, waits
  app.addHook('preHandler', async (request) => {
    const gate = gates.get(String(request.headers['x-test-gate']));
    if (gate) await gate;
  });
  await app.ready();
  feed = await FeedWatcher.start(prefix);
  // the store's scripts are loaded in Redis from here on: the command cut below is the write itself
  expect((await post('warm-up', newMessage())).statusCode).toBe(201);
});
afterAll(async () => {
  await feed?.close();
  await app?.close();
  await proxy?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
});

describe('Idempotency-Key under faults', () => {
  routeUsesTheClaimedId('creates one message when the first request outlives its claim and a retry takes over', async () => {
    const body = newMessage({ message: 'slow first request' });
    let open!: () => void;
    gates.set('slow', new Promise<void>((resolve) => (open = resolve)));
    const first = post('slow-1', body, { 'x-test-gate': 'slow' });
    await until(async () => (await redis.exists(idempotencyKey('slow-1'))) === 1, 'claimed');

    // 30 s later the first request is still stuck: a retry takes its claim over
    await leaseRunsOut('slow-1');
    const retry = await post('slow-1', body);
    expect(retry.statusCode).toBe(201);
    open();
    const late = await first;

    expect(late.statusCode).toBe(201);
    expect(late.json().id).toBe(retry.json().id);
    expect(await messagesWith('slow first request')).toEqual([retry.json().id]);
    await feed.waitFor('messageScheduled', retry.json().id);
    expect(feed.events(retry.json().id)).toEqual(['messageScheduled']);
    expect((await post('slow-1', body)).json().id).toBe(retry.json().id);
  });

  routeUsesTheClaimedId('creates one message when the first request got a 503 after Redis ran its write', async () => {
    const body = newMessage({ message: 'reply lost 4471' });
    const cut = proxy.cutAfter('reply lost 4471');
    const first = await post('lost-1', body);
    await cut;
    expect(first.statusCode).toBe(503);
    expect(first.json().code).toBe('REDIS_UNAVAILABLE');
    await until(async () => (await app.inject({ url: '/health' })).statusCode === 200, 'Redis back');
    // Redis did run the write: the message exists although the client was told 503
    const [created] = await messagesWith('reply lost 4471');
    expect(created).toBeDefined();

    // the 503 could not free the claim either (same lost connection): the retry waits out the lease
    const early = await post('lost-1', body);
    if (early.statusCode === 409) await leaseRunsOut('lost-1');
    const retry = early.statusCode === 409 ? await post('lost-1', body) : early;
    expect(retry.statusCode).toBe(201);
    expect(retry.json().id).toBe(created);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await messagesWith('reply lost 4471')).toEqual([created]);
  });

  it('lets a retry after a 503 use the key again: its claim is taken over, one message made', async () => {
    const body = newMessage({ message: 'cut before the write 6610' });
    const cut = proxy.cutBefore('cut before the write 6610');
    const first = await post('cut-1', body);
    await cut;
    expect(first.statusCode).toBe(503);
    await until(async () => (await app.inject({ url: '/health' })).statusCode === 200, 'Redis back');
    expect(await messagesWith('cut before the write 6610')).toEqual([]);

    const early = await post('cut-1', body);
    if (early.statusCode === 409) await leaseRunsOut('cut-1');
    const retry = early.statusCode === 409 ? await post('cut-1', body) : early;
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await messagesWith('cut before the write 6610')).toEqual([retry.json().id]);
    expect((await post('cut-1', body)).json().id).toBe(retry.json().id);
  });
});
