import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { IdempotencyStore } from '@punctual/store';
import { canonicalJson } from '../src/plugins/app/idempotency.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('idem');
let app: FastifyInstance;
let redis: Redis;
let feed: FeedWatcher;

const post = (key: string, idempotencyKey: string | undefined, body: unknown, api = app) =>
  api.inject({
    method: 'POST',
    url: '/scheduled',
    headers: { ...bearer(key), ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }) },
    payload: body as object,
  });

async function scheduledIds(key: string): Promise<string[]> {
  return (await app.inject({ url: '/scheduled?limit=500', headers: bearer(key) })).json().messages.map((m: { id: string }) => m.id);
}

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' });
  feed = await FeedWatcher.start(prefix);
});
afterAll(async () => {
  await feed.close();
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('Idempotency-Key on POST /scheduled', () => {
  it('replays the first response for the same key and body, with no second message or event', async () => {
    const body = newMessage({ metadata: { order: 1, ref: 'x' } });
    const first = await post(KEY_A, 'order-1', body);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    await feed.waitFor('messageScheduled', first.json().id);

    // the same body with its keys in another order is the same body
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    reordered.metadata = { ref: 'x', order: 1 };
    const again = await post(KEY_A, 'order-1', reordered);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);

    expect((await scheduledIds(KEY_A)).filter((id) => id === first.json().id)).toHaveLength(1);
    expect(await scheduledIds(KEY_A)).toHaveLength(1);
    expect(feed.seen.filter((e) => e.event === 'messageScheduled')).toHaveLength(1);

    const hash = createHash('sha256').update('order-1').digest('hex');
    const ttl = await redis.pttl(`{${prefix}}:idem:tenant-a:${hash}`);
    expect(ttl).toBeGreaterThan(23 * 3600 * 1000);
  });

  it('answers 422 for the same key with another body, and changes nothing', async () => {
    const first = await post(KEY_A, 'order-2', newMessage({ message: 'one' }));
    expect(first.statusCode).toBe(201);
    const before = await fingerprint(redis, prefix);
    const reused = await post(KEY_A, 'order-2', newMessage({ message: 'two' }));
    expect(reused.statusCode).toBe(422);
    expect(reused.json()).toEqual({
      statusCode: 422,
      code: 'IDEMPOTENCY_KEY_REUSED',
      error: 'Unprocessable Entity',
      message: expect.any(String),
    });
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('lets one of two concurrent duplicates create, the other gets 409 or the replay', async () => {
    const body = newMessage({ message: 'concurrent' });
    for (let round = 0; round < 5; round++) {
      const key = `concurrent-${round}`;
      const [a, b] = await Promise.all([post(KEY_A, key, body), post(KEY_A, key, body)]);
      const fresh = [a, b].filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined);
      expect(fresh).toHaveLength(1);
      const duplicate = a === fresh[0] ? b : a;
      if (duplicate.statusCode === 409) {
        expect(duplicate.json()).toMatchObject({ statusCode: 409, code: 'IDEMPOTENCY_IN_PROGRESS', error: 'Conflict' });
      } else {
        expect(duplicate.statusCode).toBe(201);
        expect(duplicate.headers['idempotent-replayed']).toBe('true');
        expect(duplicate.body).toBe(fresh[0]!.body);
      }
    }
    const concurrent = (await app.inject({ url: '/scheduled?limit=500', headers: bearer(KEY_A) }))
      .json()
      .messages.filter((m: { message: string }) => m.message === 'concurrent');
    expect(concurrent).toHaveLength(5);
  });

  it('answers 409 while a request with the key is in flight on any instance', async () => {
    const body = newMessage({ message: 'in flight' });
    const elsewhere = new IdempotencyStore(redis, app.store.keys, { pendingMs: 30_000, keepMs: 60_000 });
    const claim = await elsewhere.begin('tenant-a', 'in-flight', createHash('sha256').update(canonicalJson(body)).digest('hex'), app.store.newMessageId());
    expect(claim.state).toBe('claimed');
    const before = await fingerprint(redis, prefix);
    const duplicate = await post(KEY_A, 'in-flight', body);
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().code).toBe('IDEMPOTENCY_IN_PROGRESS');
    expect(await fingerprint(redis, prefix)).toEqual(before);
    expect((await post(KEY_A, 'in-flight', newMessage({ message: 'other' }))).statusCode).toBe(422);
  });

  it('keeps keys per tenant', async () => {
    const body = newMessage({ message: 'per tenant' });
    const a = await post(KEY_A, 'shared-key', body);
    const b = await post(KEY_B, 'shared-key', body);
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(b.json().id).not.toBe(a.json().id);
  });

  it('frees the key when the request fails, so the client can retry it', async () => {
    const capPrefix = uniquePrefix('idem-cap');
    const capped = await buildTestApi(capPrefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0', MAX_SCHEDULED_PER_TENANT: '1' });
    try {
      const filler = await post(KEY_A, undefined, newMessage(), capped);
      const body = newMessage({ message: 'retry me' });
      expect((await post(KEY_A, 'after-failure', body, capped)).statusCode).toBe(429);
      await capped.inject({ method: 'DELETE', url: `/scheduled/${filler.json().id}`, headers: bearer(KEY_A) });
      const retried = await post(KEY_A, 'after-failure', body, capped);
      expect(retried.statusCode).toBe(201);
      expect(retried.headers['idempotent-replayed']).toBeUndefined();
    } finally {
      await capped.close();
      await deletePrefix(capPrefix);
    }
  });

  it.each([
    ['empty', ''],
    ['longer than 255 characters', 'k'.repeat(256)],
    ['a control character', 'a\tb'],
    ['a non-ASCII character', 'cl\u00e9'],
  ])('refuses a key that is %s with 400', async (_name, key) => {
    const before = await fingerprint(redis, prefix);
    const response = await post(KEY_A, key, newMessage());
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ path: '/idempotency-key' }] });
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('accepts a key of exactly 255 printable characters', async () => {
    expect((await post(KEY_A, '~'.repeat(255), newMessage())).statusCode).toBe(201);
  });
});
