import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { MessageRecord } from '../../packages/shared/src/index.js';
import { Keyspace, Maintenance, Scheduler, applyInboundKeyword, decodeCursor } from '../../packages/store/src/index.js';
import { reconcile } from '../../apps/worker/src/reconciler.js';
import { buildTestApp, startTestWorker } from '../../test-support/apps.js';
import { startRedisCluster, type TestRedisCluster } from '../../test-support/redis-cluster.js';
import { deletePrefix, uniquePrefix } from '../../test-support/redis.js';
import { FeedClient, listen } from '../../apps/api/test/ws/feed-client.js';

const PARTITIONS = 6;
const prefix = uniquePrefix('cluster');
/** Every log line at warn or above of the API and the worker: none may mention CROSSSLOT. */
const logs: string[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    logs.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});

let cluster: TestRedisCluster;
let app: FastifyInstance;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let url: string;

beforeAll(async () => {
  cluster = await startRedisCluster();
  const env = { REDIS_CLUSTER_NODES: cluster.env, QUEUE_PARTITIONS: String(PARTITIONS) };
  app = await buildTestApp(prefix, { ...env, LOG_LEVEL: 'warn' }, undefined, logStream);
  worker = await startTestWorker(prefix, env, { log: pino({ level: 'warn' }, logStream) });
  url = await listen(app);
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await app?.close();
  if (cluster) await deletePrefix(prefix, cluster.nodes);
  await cluster?.stop();
});

/** What the server (CROSSSLOT, a script's non-local key) or ioredis (a pipeline over several slots) says of a multi-slot operation. */
const MULTI_SLOT = /CROSSSLOT|non local key|same slots allocation group/i;

afterEach(() => {
  expect(logs.filter((line) => MULTI_SLOT.test(line))).toEqual([]);
});

let phone = 5511900000000;
async function schedule(sendAt: number): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient: String(++phone), message: 'hi', channel: phone % 2 ? 'sms' : 'whatsapp', sendAt },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.id;
}

/** Every page of a list, `limit` at a time, following nextCursor to the end. */
async function listAll(path: string, limit: number): Promise<MessageRecord[]> {
  const all: MessageRecord[] = [];
  let cursor: string | null = null;
  do {
    const res = await app.inject({ url: `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { messages: MessageRecord[]; nextCursor: string | null };
    all.push(...body.messages);
    cursor = body.nextCursor;
  } while (cursor);
  return all;
}

function expectOrdered(records: MessageRecord[], score: (r: MessageRecord) => number, dir: 'asc' | 'desc') {
  const sign = dir === 'asc' ? 1 : -1;
  for (let i = 1; i < records.length; i++) {
    const a = records[i - 1]!;
    const b = records[i]!;
    const order = sign * (score(a) - score(b) || (a.id < b.id ? -1 : 1));
    expect(order, `${a.id} before ${b.id}`).toBeLessThan(0);
  }
}

const key = (f: { event: string; data?: MessageRecord }) => `${f.event}:${f.data?.id}`;

describe('API and worker on a three-master Redis Cluster, six partitions', () => {
  it('schedules, reschedules, cancels and delivers hundreds of messages: nothing lost, nothing doubled', async () => {
    const watcher = await FeedClient.connect(`${url}/ws`);
    const later = Date.now() + 3_600_000;
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await schedule(later + i * 1000));
    const delivered = ids.slice(0, 200);
    const canceled = ids.slice(200, 250);
    const kept = ids.slice(250);

    await watcher.waitFor(() => watcher.frames.filter((f) => f.event === 'messageScheduled').length >= ids.length, 'every messageScheduled');
    // A second client drops halfway and resumes from its composite `since`.
    const resumer = await FeedClient.connect(`${url}/ws`);
    const soon = Date.now() + 500;
    for (const [i, id] of delivered.entries()) {
      const res = await app.inject({ method: 'PUT', url: `/scheduled/${id}`, payload: { sendAt: soon + (i % 20) } });
      expect(res.statusCode, res.body).toBe(200);
      if (i === 100) await resumer.close();
    }
    const since = resumer.frames.at(-1)!.id!;
    expect(since.split('_')).toHaveLength(PARTITIONS);
    const resumed = await FeedClient.connect(`${url}/ws?since=${since}`);
    for (const id of canceled) expect((await app.inject({ method: 'DELETE', url: `/scheduled/${id}` })).statusCode).toBe(200);

    const deliveredCount = () => watcher.frames.filter((f) => f.event === 'messageDelivered').length;
    await watcher.waitFor(() => deliveredCount() >= delivered.length, `${delivered.length} messageDelivered`);
    await resumed.waitFor(() => resumed.frames.filter((f) => f.event === 'messageDelivered').length >= delivered.length, 'every messageDelivered after resuming');
    await resumed.waitForEvent('messageDeleted', canceled.at(-1)!);

    // every delivered id exactly once on the feed, and nothing else delivered
    const deliveredFrames = watcher.frames.filter((f) => f.event === 'messageDelivered').map((f) => f.data!.id);
    expect(deliveredFrames.sort()).toEqual([...delivered].sort());
    for (const id of delivered) expect(watcher.eventsOf(id)).toEqual(['messageScheduled', 'messageUpdated', 'messageSending', 'messageDelivered']);
    for (const id of canceled) expect(watcher.eventsOf(id)).toEqual(['messageScheduled', 'messageDeleted']);

    // the resumed client has, in its two connections, every event once: none missed, none twice
    const seenByResumer = [...resumer.frames, ...resumed.frames].map(key);
    expect(new Set(seenByResumer).size).toBe(seenByResumer.length);
    expect(seenByResumer.sort()).toEqual(watcher.frames.filter((f) => f.event !== 'messageScheduled').map(key).sort());

    // lists across partitions: complete, without duplicates, in order, page after page
    const deliveredList = await listAll('/delivered', 7);
    expect(deliveredList.map((m) => m.id).sort()).toEqual([...delivered].sort());
    expectOrdered(deliveredList, (m) => Date.parse(m.deliveredAt!), 'desc');
    const scheduledList = await listAll('/scheduled', 9);
    expect(scheduledList.map((m) => m.id)).toEqual(kept);
    expectOrdered(scheduledList, (m) => m.sendAt, 'asc');
    const canceledList = await listAll('/canceled', 11);
    expect(canceledList.map((m) => m.id).sort()).toEqual([...canceled].sort());
    for (const id of delivered.slice(0, 20)) {
      expect((await app.inject({ url: `/messages/${id}` })).json().data).toMatchObject({ status: 'delivered', attempts: 1 });
    }

    // the messages (and their queues) are spread over every shard
    const sizes = await Promise.all(cluster.masters.map((m) => m.dbsize()));
    for (const size of sizes) expect(size).toBeGreaterThan(0);
    const keyspace = new Keyspace({ prefix, partitions: PARTITIONS });
    expect(new Set(ids.map((id) => keyspace.partitionOf(id))).size).toBe(PARTITIONS);

    await Promise.all([watcher.close(), resumed.close()]);
  });

  it('pages a tenant list in order across six partitions from the store itself', async () => {
    const listPrefix = uniquePrefix('cluster-list');
    const scheduler = await Scheduler.create(cluster.client, { keyspace: new Keyspace({ prefix: listPrefix, partitions: PARTITIONS }), eventsMaxLen: 1000 });
    const store = scheduler.store;
    const now = Date.now();
    const ids: string[] = [];
    // equal sendAt in groups of five: the (score, id) boundary must order ties across partitions
    for (let i = 0; i < 120; i++) {
      const result = await scheduler.schedule('t1', { recipient: '5511988887777', channel: 'sms', message: 'x', sendAt: now + 60_000 + Math.floor(i / 5) }, now);
      if (result.ok) ids.push(result.record.id);
    }
    try {
      for (const limit of [1, 4, 13, 500]) {
        const seen: MessageRecord[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await store.list('t1', 'scheduled', { limit, cursor: cursor ? decodeCursor(cursor)! : undefined });
          seen.push(...page.messages);
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(seen.map((m) => m.id), `limit ${limit}`).toEqual(ids);
      }
      expect(ids).toHaveLength(120);
    } finally {
      await scheduler.close();
      await deletePrefix(listPrefix, cluster.nodes);
    }
  });

  it('keeps auth, rate limits, idempotency, the scheduled cap and health working on the global keys', async () => {
    const globalPrefix = uniquePrefix('cluster-global');
    const own = await buildTestApp(
      globalPrefix,
      {
        REDIS_CLUSTER_NODES: cluster.env,
        QUEUE_PARTITIONS: String(PARTITIONS),
        API_KEYS: 'acme:cluster-test-key-0123456789',
        RATE_LIMIT_MAX: '5',
        RATE_LIMIT_WINDOW_MS: '600000',
        MAX_SCHEDULED_PER_TENANT: '3',
        LOG_LEVEL: 'warn',
      },
      undefined,
      logStream,
    );
    const headers = { authorization: 'Bearer cluster-test-key-0123456789' };
    try {
      expect((await own.inject({ url: '/health' })).json()).toEqual({ status: 'ok', redis: 'connected' });
      const post = (key: string, sendAt: number) =>
        own.inject({ method: 'POST', url: '/scheduled', headers: { ...headers, 'idempotency-key': key }, payload: { recipient: '5511912345678', message: 'hi', channel: 'sms', sendAt } });
      const sendAt = Date.now() + 3_600_000;
      const first = await post('k1', sendAt);
      expect(first.statusCode).toBe(201);
      const replay = await post('k1', sendAt);
      expect(replay.json().data.id).toBe(first.json().data.id);
      expect((await post('k2', sendAt)).statusCode).toBe(201);
      expect((await post('k3', sendAt)).statusCode).toBe(201);
      // the fifth request of the window, over the tenant's cap of three scheduled messages
      expect((await post('k4', sendAt)).json()).toMatchObject({ statusCode: 429, code: 'SCHEDULED_LIMIT_REACHED' });
      expect((await own.inject({ url: '/scheduled', headers })).json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    } finally {
      await own.close();
      await deletePrefix(globalPrefix, cluster.nodes);
    }
  });

  it('opts a recipient out on every shard: its messages in every partition canceled, new ones refused, the repair and the lists working', async () => {
    const keyspace = new Keyspace({ prefix, partitions: PARTITIONS });
    const watcher = await FeedClient.connect(`${url}/ws`);
    try {
      const recipient = '5511933332222';
      const ids: string[] = [];
      // ids are random: keep going until every partition holds at least one message
      for (let i = 0; i < 24 || new Set(ids.map((id) => keyspace.partitionOf(id))).size < PARTITIONS; i++) {
        const res = await app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: i % 2 ? `+${recipient}` : recipient, message: 'hi', channel: 'sms', sendAt: Date.now() + 3_600_000 } });
        expect(res.statusCode, res.body).toBe(201);
        ids.push(res.json().id);
      }
      expect(new Set(ids.map((id) => keyspace.partitionOf(id))).size).toBe(PARTITIONS);
      expect(await applyInboundKeyword(app.suppressions, { channel: 'sms', from: `+${recipient}`, text: 'STOP' })).toEqual({ keyword: 'opt_out', changed: true });
      for (const id of ids) expect((await watcher.waitForEvent('messageDeleted', id)).data).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
      const refused = await app.inject({ method: 'POST', url: '/scheduled', payload: { recipient, message: 'hi', channel: 'sms', sendAt: Date.now() } });
      expect(refused.json()).toMatchObject({ statusCode: 422, code: 'RECIPIENT_OPTED_OUT' });
      expect((await app.inject({ url: `/suppressions/sms/${recipient}` })).json().data).toMatchObject({ scope: 'deployment', source: 'inbound' });

      const own = '5511933331111';
      expect((await app.inject({ method: 'PUT', url: `/suppressions/whatsapp/${own}` })).statusCode).toBe(201);
      expect((await app.inject({ url: '/suppressions' })).json().suppressions).toMatchObject([{ channel: 'whatsapp', recipient: own }]);
      expect(await app.suppressions.repair(Date.now() + 3_600_000)).toBe(0);
      expect((await app.inject({ method: 'DELETE', url: `/suppressions/whatsapp/${own}` })).statusCode).toBe(200);
    } finally {
      await watcher.close();
    }
  });

  it('schedules a batch over every slot in one request, counts it through delivery, lists and cancels it', async () => {
    const now = Date.now();
    const messages = Array.from({ length: 60 }, (_, i) => ({ recipient: String(++phone), message: 'batch', channel: 'sms', sendAt: i % 2 ? now : now + 3_600_000 }));
    const res = await app.inject({ method: 'POST', url: '/scheduled/batch', payload: { messages } });
    expect(res.statusCode, res.body).toBe(200);
    const { batchId, accepted } = res.json();
    expect(accepted).toBe(60);
    const counts = async () => (await app.inject({ url: `/batches/${batchId}` })).json().counts;
    const deadline = Date.now() + 20_000;
    while ((await counts()).delivered < 30) {
      if (Date.now() > deadline) throw new Error(`batch not delivered: ${JSON.stringify(await counts())}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await counts()).toEqual({ scheduled: 30, sending: 0, delivered: 30, failed: 0, canceled: 0 });
    expect(await listAll(`/scheduled?batchId=${batchId}`, 7)).toHaveLength(30);
    expect((await app.inject({ method: 'DELETE', url: `/batches/${batchId}` })).json()).toEqual({ canceled: 30 });
    expect(await counts()).toEqual({ scheduled: 0, sending: 0, delivered: 30, failed: 0, canceled: 30 });
  });

  it('finds receipts by provider id in every partition, parks early ones, and keeps lists and lookups in the slot', async () => {
    const receiptPrefix = uniquePrefix('cluster-receipts');
    const keyspace = new Keyspace({ prefix: receiptPrefix, partitions: PARTITIONS });
    const scheduler = await Scheduler.create(cluster.client, { keyspace, eventsMaxLen: 1000, retentionMs: 60_000 });
    const maintenance = new Maintenance(cluster.client, keyspace, 1000, 60_000);
    try {
      const now = Date.now();
      const sending = async () => {
        const result = await scheduler.schedule('t1', { recipient: '5511977776666', channel: 'whatsapp', message: 'x', sendAt: now }, now);
        if (!result.ok) throw new Error(result.reason);
        expect((await scheduler.claim(result.record.id, now)).outcome).toBe('claimed');
        return result.record.id;
      };
      const ids: string[] = [];
      // ids are random: keep going until every partition holds at least one message
      for (let i = 0; i < 18 || new Set(ids.map((id) => keyspace.partitionOf(id))).size < PARTITIONS; i++) {
        const id = await sending();
        const pid = `wamid.cluster-${i}`;
        // every third one reports before its delivery is recorded
        if (i % 3 === 0) expect((await scheduler.recordReceipt({ providerMessageId: pid, status: 'sent', at: now }, now)).outcome).toBe('parked');
        await scheduler.deliver(id, now, pid, 1, now - 1);
        ids.push(id);
      }
      expect(new Set(ids.map((id) => keyspace.partitionOf(id))).size).toBe(PARTITIONS);
      for (const [i, id] of ids.entries()) {
        const byIndex = await scheduler.recordReceipt({ providerMessageId: `wamid.cluster-${i}`, status: 'delivered', at: now }, now);
        expect(byIndex).toMatchObject({ outcome: 'applied', record: { id } });
        const named = await scheduler.recordReceipt({ providerMessageId: `wamid.cluster-${i}`, messageId: id, status: 'read', at: now }, now);
        expect(named).toMatchObject({ outcome: 'applied', record: { id, receipt: { status: 'read' } } });
      }
      expect((await scheduler.store.list('t1', 'delivered', { limit: 100, receipt: 'read' })).messages.map((m) => m.id).sort()).toEqual([...ids].sort());
      const taken = (await Promise.all(keyspace.allTags().map((tag) => scheduler.receipts.takeDueLookups(tag, now, 100, now + 1000)))).flat();
      expect(taken).toEqual([]);
      for (const tag of keyspace.allTags()) await maintenance.expire(tag, now + 120_000, 100);
      expect((await scheduler.store.list('t1', 'delivered', { limit: 100, receipt: 'read' })).messages).toEqual([]);
    } finally {
      await scheduler.close();
      await deletePrefix(receiptPrefix, cluster.nodes);
    }
  });

  it('reconciles every partition: a due message that lost its job is enqueued and delivered', async () => {
    const keyspace = new Keyspace({ prefix, partitions: PARTITIONS });
    const scheduler = await Scheduler.create(cluster.client, { keyspace, eventsMaxLen: 1000 });
    const maintenance = new Maintenance(cluster.client, keyspace, 1000, 86_400_000);
    const watcher = await FeedClient.connect(`${url}/ws`);
    try {
      const now = Date.now();
      const orphans: string[] = [];
      // due a while ago, and their jobs gone (a Redis error failed them): only the records remain
      for (let i = 0; i < 12; i++) {
        const result = await scheduler.schedule('default', { recipient: '5511977776666', channel: 'sms', message: 'x', sendAt: now + 3_600_000 }, now - 10_000);
        if (!result.ok) throw new Error(result.reason);
        const { id } = result.record;
        orphans.push(id);
        await scheduler.deliveries.of(id).remove(id);
        await scheduler.update('default', id, { sendAt: now - 10_000 }, now);
      }
      const repaired = await reconcile({ redis: cluster.client, maintenance, deliveries: scheduler.deliveries, log: pino({ level: 'warn' }, logStream) });
      expect(repaired).toBe(orphans.length);
      for (const id of orphans) await watcher.waitForEvent('messageDelivered', id);
    } finally {
      await watcher.close();
      await scheduler.close();
    }
  });
});
