import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES, type MessageRecord } from '@punctual/shared';
import { Keyspace } from '@punctual/store';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { CallbackQueues } from '@punctual/store';
import { SlowReceivers, TenantSlots, receiverKey } from '../src/callbacks/fair-share.js';

const DAY_MS = 24 * 3600 * 1000;
let serial = 0;

/** A delivered message's record with a callbackUrl, as deliver-message hands it to `notify`. */
function delivered(callbackUrl: string): MessageRecord {
  const now = new Date().toISOString();
  const id = `01TESTFAIRNESS${String(++serial).padStart(12, '0')}`;
  return { id, recipient: '5511999999999', message: 'fair', channel: 'sms', sendAt: Date.now(), status: 'delivered', createdAt: now, updatedAt: now, deliveredAt: now, attempts: 1, callbackUrl, version: 3 };
}

interface Setup {
  prefix: string;
  worker: Awaited<ReturnType<typeof startTestWorker>>;
  callbacks: CallbackQueues;
  queue: Queue;
  redis: Redis;
}

async function setUp(name: string, env: Record<string, string>): Promise<Setup> {
  const prefix = uniquePrefix(name);
  const worker = await startTestWorker(prefix, { CALLBACK_ALLOW_PRIVATE: 'true', ...env });
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const callbacks = new CallbackQueues(new Keyspace({ prefix, partitions: 1 }), redis, 30 * DAY_MS);
  const queue = new Queue(QUEUES.callbacks.name, { connection: { url: redisUrl() }, prefix: `{${prefix}-p0}` });
  return { prefix, worker, callbacks, queue, redis };
}

async function tearDown(s: Setup, receivers: FakeHttpServer[]) {
  // receivers first: their closed connections end the hanging callbacks the worker waits for
  for (const receiver of receivers) await receiver?.close();
  await s.worker.close();
  await s.callbacks.close();
  await s.queue.close();
  s.redis.disconnect();
  await deletePrefix(s.prefix);
}

describe('one tenant flooding callbacks to a receiver that never answers', () => {
  let s: Setup;
  let hanging: FakeHttpServer;
  let healthy: FakeHttpServer;
  beforeAll(async () => {
    hanging = await FakeHttpServer.start(() => ({ status: 200, hang: true }));
    healthy = await FakeHttpServer.start(() => ({ status: 204 }));
    // a long timeout: only the tenant's share of the slots can let tenant B through
    s = await setUp('callback-fairness', { WORKER_CONCURRENCY: '20', CALLBACK_TENANT_CONCURRENCY: '5', CALLBACK_TIMEOUT_MS: '60000' });
  });
  afterAll(() => tearDown(s, [hanging, healthy]));

  it("holds at most its share of the slots: another tenant's callback goes out at once", async () => {
    for (let i = 0; i < 60; i++) await s.callbacks.notify('messageDelivered', 'tenantA', delivered(`${hanging.url}/a/${i}`));
    await hanging.waitForRequests(5);
    const b = delivered(`${healthy.url}/b`);
    await s.callbacks.notify('messageDelivered', 'tenantB', b);

    // without the share, tenant A's hanging requests fill every slot for the whole timeout (60 s)
    const [request] = await healthy.waitForRequests(1, undefined, 10_000);
    expect(JSON.parse(request!.body)).toMatchObject({ event: 'messageDelivered', data: { id: b.id } });
    expect(hanging.requests).toHaveLength(5);
    // the jobs put back for later have not spent an attempt
    const waiting = await s.queue.getJobs(['delayed', 'wait']);
    expect(waiting.length).toBeGreaterThan(0);
    for (const job of waiting) expect(job.attemptsMade).toBe(0);
  });
});

describe('a receiver that just timed out', () => {
  let s: Setup;
  let hanging: FakeHttpServer;
  const failures: { id: string; tenant: string; reason: string }[] = [];
  let onFailure = () => {};
  beforeAll(async () => {
    hanging = await FakeHttpServer.start(() => ({ status: 200, hang: true }));
    // it then sits out 2 × 1500 ms: plenty for the jobs below to find it cooling down
    s = await setUp('callback-cooldown', { CALLBACK_TIMEOUT_MS: '1500' });
    s.worker.callbackWorkers[0]!.on('failed', (job, err) => {
      failures.push({ id: job!.id!, tenant: job!.data.tenant, reason: err.message });
      onFailure();
    });
  });
  afterAll(() => tearDown(s, [hanging]));

  /** Resolves once `count` jobs failed as `match` says. */
  const failed = (count: number, match: (f: (typeof failures)[number]) => boolean, timeoutMs = 15_000) =>
    new Promise<void>((resolve, reject) => {
      const seen = () => new Set(failures.filter(match).map((f) => f.id)).size;
      const timer = setTimeout(() => reject(new Error(`only ${seen()}/${count} such failures within ${timeoutMs} ms`)), timeoutMs);
      const check = () => seen() >= count && (clearTimeout(timer), resolve());
      onFailure = check;
      check();
    });

  it("gets no more of that tenant's callbacks until it cooled down; another tenant's still go to it", async () => {
    await s.callbacks.notify('messageDelivered', 'tenantA', delivered(`${hanging.url}/first`));
    await failed(1, (f) => f.reason.startsWith('callback timed out'));

    for (let i = 0; i < 10; i++) await s.callbacks.notify('messageDelivered', 'tenantA', delivered(`${hanging.url}/next/${i}`));
    await failed(10, (f) => f.tenant === 'tenantA' && f.reason === 'callback not sent: the receiver timed out on a recent callback');
    expect(hanging.requests.filter((r) => r.path.startsWith('/next/'))).toEqual([]);

    await s.callbacks.notify('messageDelivered', 'tenantB', delivered(`${hanging.url}/b`));
    await hanging.waitForRequests(1, (r) => r.path === '/b');
  });
});

describe('fair-share bookkeeping', () => {
  it('caps the callbacks of each tenant in flight, each tenant on its own', () => {
    const slots = new TenantSlots(2);
    expect([slots.tryTake('a'), slots.tryTake('a'), slots.tryTake('a'), slots.tryTake('b')]).toEqual([true, true, false, true]);
    slots.release('a');
    expect(slots.tryTake('a')).toBe(true);
    expect(slots.tryTake('a')).toBe(false);
  });

  it('keeps a timed-out receiver cooling down, then lets one probe through at a time', () => {
    const receivers = new SlowReceivers(1000);
    const a = receiverKey('tenantA', 'https://hooks.example.com/x?y=1');
    expect(receiverKey('tenantA', 'https://hooks.example.com/other')).toBe(a);
    expect(receiverKey('tenantB', 'https://hooks.example.com/x')).not.toBe(a);
    expect(receivers.admit(a, 0)).toBe(true);
    receivers.timedOut(a, 0);
    expect(receivers.admit(a, 999)).toBe(false);
    expect(receivers.admit(receiverKey('tenantB', 'https://hooks.example.com/x'), 999)).toBe(true);
    expect(receivers.admit(a, 1000)).toBe(true);
    expect(receivers.admit(a, 1001)).toBe(false);
    receivers.timedOut(a, 1500);
    expect(receivers.admit(a, 2400)).toBe(false);
    expect(receivers.admit(a, 2500)).toBe(true);
    receivers.settled(a);
    expect([receivers.admit(a, 2501), receivers.admit(a, 2502)]).toEqual([true, true]);
  });

  it('forgets the oldest receivers first when it remembers too many', () => {
    const receivers = new SlowReceivers(1000, 2);
    for (const host of ['a', 'b', 'c']) receivers.timedOut(host, 0);
    expect([receivers.admit('a', 1), receivers.admit('b', 1), receivers.admit('c', 1)]).toEqual([true, false, false]);
  });
});
