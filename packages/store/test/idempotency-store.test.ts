import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { IdempotencyStore, Keyspace, type IdempotencyClaim } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('idem-store');
const keys = new Keyspace({ prefix, partitions: 1 });
const KEEP_MS = 24 * 3600 * 1000;
let redis: Redis;

beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const store = (pendingMs = 30_000) => new IdempotencyStore(redis, keys, { pendingMs, keepMs: KEEP_MS });
type Claimed = Extract<IdempotencyClaim, { state: 'claimed' }>;

function claimed(claim: IdempotencyClaim): Claimed {
  expect(claim.state).toBe('claimed');
  return claim as Claimed;
}

/** begin() until it claims, for a claim whose short lease is running out: no sleep, a deadline. */
async function claimOnceLeaseEnds(s: IdempotencyStore, key: string, body: string, id: string): Promise<Claimed> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const claim = await s.begin('t', key, body, id);
    if (claim.state === 'claimed') return claim;
    expect(claim.state).toBe('pending');
    if (Date.now() > deadline) throw new Error('the lease never ran out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('IdempotencyStore', () => {
  it('claims a key with a message id, kept 24 h, and holds it against others while the request runs', async () => {
    const first = claimed(await store().begin('t', 'k1', 'body-1', 'ID-1'));
    expect(first).toMatchObject({ messageId: 'ID-1', takenOver: false });
    expect(await redis.pttl(keys.idempotency('t', sha('k1')))).toBeGreaterThan(KEEP_MS - 60_000);
    expect(await store().begin('t', 'k1', 'body-1', 'ID-2')).toEqual({ state: 'pending', bodyHash: 'body-1' });
    expect(await store().begin('t', 'k1', 'body-other', 'ID-2')).toEqual({ state: 'pending', bodyHash: 'body-1' });

    expect(await store().complete('t', 'k1', first, 'body-1', 201, '{"id":"ID-1"}')).toBe(true);
    expect(await store().begin('t', 'k1', 'body-1', 'ID-3')).toEqual({ state: 'done', bodyHash: 'body-1', statusCode: 201, body: '{"id":"ID-1"}' });
  });

  it('lets a retry take over a claim that outlived its lease, with the same message id; the stale request then changes nothing', async () => {
    const slow = store(50);
    const stale = claimed(await slow.begin('t', 'k2', 'body', 'ID-A'));
    const retry = await claimOnceLeaseEnds(slow, 'k2', 'body', 'ID-B');
    expect(retry).toMatchObject({ messageId: 'ID-A', takenOver: true });
    expect(retry.token).not.toBe(stale.token);

    expect(await slow.complete('t', 'k2', stale, 'body', 201, '{"id":"stale"}')).toBe(false);
    expect(await slow.abandon('t', 'k2', stale, 'body')).toBe(false);
    expect(await slow.complete('t', 'k2', retry, 'body', 201, '{"id":"ID-A"}')).toBe(true);
    expect(await slow.begin('t', 'k2', 'body', 'ID-C')).toMatchObject({ state: 'done', body: '{"id":"ID-A"}' });
  });

  it('keeps the key and its message id after a failure: the same body takes it over at once, another body is refused', async () => {
    const failed = claimed(await store().begin('t', 'k3', 'body', 'ID-X'));
    expect(await store().abandon('t', 'k3', failed, 'body')).toBe(true);
    expect(await store().begin('t', 'k3', 'other body', 'ID-Y')).toEqual({ state: 'abandoned', bodyHash: 'body' });
    const retry = claimed(await store().begin('t', 'k3', 'body', 'ID-Z'));
    expect(retry).toMatchObject({ messageId: 'ID-X', takenOver: true });
    expect(await redis.pttl(keys.idempotency('t', sha('k3')))).toBeGreaterThan(KEEP_MS - 60_000);
  });

  it('frees the key after a refusal (nothing was written): any body may use it again, with a new id', async () => {
    const refused = claimed(await store().begin('t', 'k4', 'body', 'ID-1'));
    expect(await store().release('t', 'k4', refused)).toBe(true);
    expect(claimed(await store().begin('t', 'k4', 'another body', 'ID-2'))).toMatchObject({ messageId: 'ID-2', takenOver: false });
  });

  it('keeps per tenant', async () => {
    claimed(await store().begin('t', 'k5', 'body', 'ID-1'));
    expect(claimed(await store().begin('u', 'k5', 'body', 'ID-2')).messageId).toBe('ID-2');
  });
});

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
