import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Keyspace, applyInboundKeyword } from '../packages/store/src/index.js';
import type { MessageEventName } from '../packages/shared/src/index.js';
import { CompletedJobs, buildTestApp, startTestWorker } from '../test-support/apps.js';
import { FakeHttpServer } from '../test-support/fake-http.js';
import { TWILIO_WHATSAPP_FROM, twilioEnv, twilioError, twilioMessage } from '../test-support/providers.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';
import { KEY_A, KEY_B, TWO_TENANTS, bearer } from '../apps/api/test/helpers.js';

/** Everything here runs over three partitions: a recipient's messages are spread over all of them. */
const PARTITIONS = 3;
const prefix = uniquePrefix('e2e-opt-outs');
const keyspace = new Keyspace({ prefix, partitions: PARTITIONS });
/** Recipients Twilio answers 21610 for (unsubscribed from our sender). */
const unsubscribed = new Set<string>();

let fake: FakeHttpServer;
let app: FastifyInstance;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let feeds: FeedWatcher[];
let completed: CompletedJobs[];
let redis: Redis;

beforeAll(async () => {
  fake = await FakeHttpServer.start((request) => {
    const to = new URLSearchParams(request.body).get('To')!.replace(/^whatsapp:/, '');
    if (unsubscribed.has(to)) return twilioError(400, 21610, 'Attempt to send to unsubscribed recipient');
    return { status: 201, body: twilioMessage(`SM${fake.requests.length}`) };
  });
  const env = { QUEUE_PARTITIONS: String(PARTITIONS) };
  app = await buildTestApp(prefix, { ...env, API_KEYS: TWO_TENANTS });
  worker = await startTestWorker(prefix, { ...env, ...twilioEnv(fake.url, { TWILIO_WHATSAPP_FROM }), PROVIDER_TIMEOUT_MS: '2000', RECONCILE_INTERVAL_MS: '200' });
  completed = worker.workers.map((w) => new CompletedJobs(w));
  feeds = await Promise.all(keyspace.allTags().map((_, p) => FeedWatcher.start(prefix, redisUrl(), p)));
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  for (const c of completed ?? []) c.stop();
  await worker?.close();
  await app?.close();
  await Promise.all((feeds ?? []).map((feed) => feed.close()));
  await fake?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
});

let phone = 4420700000000;
const newRecipient = () => String(++phone);

/** Provider requests for one recipient, any spelling, any channel. */
const sentTo = (digits: string) => fake.requests.filter((r) => new URLSearchParams(r.body).get('To')!.endsWith(`+${digits}`));

async function post(key: string, body: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: '/scheduled', headers: bearer(key), payload: { message: 'hi', channel: 'sms', sendAt: Date.now(), ...body } });
}

async function schedule(key: string, body: Record<string, unknown>) {
  const res = await post(key, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string };
}

const feedOf = (id: string) => feeds[keyspace.partitionOf(id)]!;
const waitFor = (event: MessageEventName, id: string) => feedOf(id).waitFor(event, id, 20_000);
const record = async (key: string, id: string) => (await app.inject({ url: `/messages/${id}`, headers: bearer(key) })).json().data;

/** Runs the message's delivery job now, as if it had come due, and waits until the worker finished it. */
async function fireJob(id: string) {
  const done = completed[keyspace.partitionOf(id)]!;
  await app.deliveries.enqueue(id, Date.now());
  await done.waitFor(id);
}

describe('a STOP, end to end', () => {
  it("cancels both tenants' scheduled messages, which the worker then never sends; 422 afterwards; START opens it again", async () => {
    const digits = newRecipient();
    const ofA = await schedule(KEY_A, { recipient: `+${digits}`, sendAt: Date.now() + 3_600_000 });
    const ofB = await schedule(KEY_B, { recipient: digits, sendAt: Date.now() + 3_600_000 });

    expect(await applyInboundKeyword(app.suppressions, { channel: 'sms', from: `+${digits}`, text: 'stop' })).toEqual({ keyword: 'opt_out', changed: true });
    for (const [key, m, tenant] of [[KEY_A, ofA, 'tenant-a'], [KEY_B, ofB, 'tenant-b']] as const) {
      expect((await waitFor('messageDeleted', m.id)).tenant).toBe(tenant);
      expect(await record(key, m.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
      // its job, had it survived, does nothing when it runs
      await fireJob(m.id);
      expect(feedOf(m.id).events(m.id)).toEqual(['messageScheduled', 'messageDeleted']);
    }
    expect(sentTo(digits)).toEqual([]);

    for (const key of [KEY_A, KEY_B]) expect((await post(key, { recipient: digits })).json()).toMatchObject({ statusCode: 422, code: 'RECIPIENT_OPTED_OUT' });
    expect((await post(KEY_A, { recipient: digits, channel: 'whatsapp' })).statusCode).toBe(201);

    await applyInboundKeyword(app.suppressions, { channel: 'sms', from: digits, text: 'UNSTOP' });
    const after = await schedule(KEY_B, { recipient: `+${digits}` });
    await waitFor('messageDelivered', after.id);
    expect(sentTo(digits).filter((r) => !r.body.includes('whatsapp'))).toHaveLength(1);
  });

  it('a STOP arriving as messages come due: each is sent once, or canceled and never sent', async () => {
    const recipients = Array.from({ length: 24 }, newRecipient);
    const due = Date.now() + 400;
    const messages = await Promise.all(recipients.map((digits, i) => schedule(i % 2 ? KEY_A : KEY_B, { recipient: i % 3 ? digits : `+${digits}`, sendAt: due })));
    // the STOPs spread around the due moment
    await Promise.all(
      recipients.map(async (digits, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now() - 40 + i * 8)));
        await applyInboundKeyword(app.suppressions, { channel: 'sms', from: `+${digits}`, text: 'STOP' });
      }),
    );
    for (const [i, m] of messages.entries()) {
      const final = await Promise.race([waitFor('messageDelivered', m.id), waitFor('messageDeleted', m.id)]);
      const requests = sentTo(recipients[i]!);
      if (final.event === 'messageDeleted') {
        expect(final.data).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
        expect(requests).toEqual([]);
        expect(feedOf(m.id).events(m.id)).not.toContain('messageSending');
      } else {
        expect(requests).toHaveLength(1);
        expect(feedOf(m.id).events(m.id)).not.toContain('messageDeleted');
      }
    }
  });

  it('Twilio 21610 fails the message and opts the recipient out for every tenant, canceling its other messages', async () => {
    const digits = newRecipient();
    unsubscribed.add(`+${digits}`);
    const later = await schedule(KEY_B, { recipient: `+${digits}`, sendAt: Date.now() + 3_600_000 });
    const metric = async () => {
      const text = (await app.inject({ url: '/metrics' })).body;
      return Number(text.split('\n').find((l) => l.startsWith('punctual_optouts_total{channel="sms",source="provider"} '))!.split(' ')[1]);
    };
    const before = await metric();

    const now = await schedule(KEY_A, { recipient: digits });
    await waitFor('messageFailed', now.id);
    expect(await record(KEY_A, now.id)).toMatchObject({ status: 'failed', attempts: 1, lastError: '21610: Attempt to send to unsubscribed recipient' });
    await waitFor('messageDeleted', later.id);
    expect(await record(KEY_B, later.id)).toMatchObject({ status: 'canceled', cancelReason: 'opted_out' });
    expect(sentTo(digits)).toHaveLength(1);

    const one = await app.inject({ url: `/suppressions/sms/${digits}`, headers: bearer(KEY_B) });
    expect(one.json().data).toMatchObject({ scope: 'deployment', source: 'provider', recipient: digits });
    expect((await post(KEY_B, { recipient: digits })).json().code).toBe('RECIPIENT_OPTED_OUT');
    expect((await app.inject({ method: 'POST', url: `/failed/${now.id}/retry`, headers: bearer(KEY_A) })).statusCode).toBe(422);
    expect(await metric()).toBe(before + 1);
  });

  it("a tenant's own list: only its messages are canceled and never sent; the other tenant's are delivered", async () => {
    const digits = newRecipient();
    const mine = await schedule(KEY_A, { recipient: digits, channel: 'whatsapp', sendAt: Date.now() + 3_600_000 });
    expect((await app.inject({ method: 'PUT', url: `/suppressions/whatsapp/%2B${digits}`, headers: bearer(KEY_A) })).json()).toMatchObject({ canceled: 1 });
    await waitFor('messageDeleted', mine.id);
    await fireJob(mine.id);
    const theirs = await schedule(KEY_B, { recipient: digits, channel: 'whatsapp' });
    await waitFor('messageDelivered', theirs.id);
    expect(sentTo(digits)).toHaveLength(1);
    expect((await post(KEY_A, { recipient: `+${digits}`, channel: 'whatsapp' })).statusCode).toBe(422);
  });

  it('the worker finishes an opt-out whose process died before the partitions had it', async () => {
    const digits = newRecipient();
    const messages = await Promise.all(Array.from({ length: 6 }, () => schedule(KEY_A, { recipient: digits, sendAt: Date.now() + 3_600_000 })));
    // the canonical write alone, journaled a minute ago: what a process killed right after it leaves
    const call = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    if (!call.recordSuppression) redis.defineCommand('recordSuppression', { numberOfKeys: 1, lua: (await import('../packages/store/src/lua/suppressions.js')).recordSuppression });
    await call.recordSuppression!(keyspace.suppressionSeq(), keyspace.global(), '*', 'sms', digits, '1', Date.now() - 60_000, 'inbound');
    for (const m of messages) await waitFor('messageDeleted', m.id);
    expect((await post(KEY_B, { recipient: digits })).statusCode).toBe(422);
    expect(await redis.zcard(keyspace.suppressionJournal())).toBe(0);
  });
});
