import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { TestMessages } from '../../../test-support/messages.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { twilioEnv, twilioMessage } from '../../../test-support/providers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const prefix = uniquePrefix('crash');
const MESSAGES = 24;
/**
 * A long provider deadline makes BullMQ's lock 62 s, longer than this test waits: the dead
 * worker's jobs can only be taken over because its connection closed (claim recovery).
 */
const env = { PROVIDER_TIMEOUT_MS: '60000', RECONCILE_INTERVAL_MS: '60000' };

let twilio: FakeHttpServer;
let feed: FeedWatcher;
let messages: TestMessages;
let doomed: ChildProcess | undefined;
let survivor: Awaited<ReturnType<typeof startTestWorker>> | undefined;

beforeAll(async () => {
  // The worker process runs the built dist, as in production.
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-b'], { cwd: root, stdio: 'inherit' });
  // A slow provider, so that deliveries are in flight when the worker dies.
  twilio = await FakeHttpServer.start((_request, n) => ({ status: 201, body: twilioMessage(`SM${n}`), delayMs: 150 }));
  feed = await FeedWatcher.start(prefix);
  messages = await TestMessages.create(prefix);
}, 120_000);
afterAll(async () => {
  doomed?.kill('SIGKILL');
  await survivor?.close();
  await messages.close();
  await feed.close();
  await twilio.close();
  await deletePrefix(prefix);
});

describe('a live worker whose provider is slow', () => {
  it('keeps its deliveries: no other worker takes them over while it waits', async () => {
    const slowPrefix = uniquePrefix('crash-slow');
    // each send takes longer than the claim recovery's two checks plus a stalled check
    const slow = await FakeHttpServer.start((_request, n) => ({ status: 201, body: twilioMessage(`SMslow${n}`), delayMs: 6000 }));
    const own = await TestMessages.create(slowPrefix);
    const workers = [
      await startTestWorker(slowPrefix, { ...env, ...twilioEnv(slow.url), WORKER_CONCURRENCY: '8' }),
      await startTestWorker(slowPrefix, { ...env, ...twilioEnv(slow.url), WORKER_CONCURRENCY: '8' }),
    ];
    const watcher = await FeedWatcher.start(slowPrefix);
    try {
      for (let i = 0; i < 8; i++) await own.schedule({ message: `slow ${i}` });
      await watcher.waitForCount('messageDelivered', 8, 30_000);
      expect(slow.requests).toHaveLength(8);
      expect(watcher.seen.filter((e) => e.event === 'messageSending')).toHaveLength(8);
    } finally {
      await watcher.close();
      for (const worker of workers) await worker.close();
      await own.close();
      await slow.close();
      await deletePrefix(slowPrefix);
    }
  });
});

describe('a worker killed with SIGKILL mid-delivery', () => {
  it('loses nothing: another worker delivers every message, each recorded once', async () => {
    doomed = spawn(process.execPath, [`${root}apps/worker/dist/main.js`], {
      cwd: root,
      env: { PATH: process.env.PATH, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, WORKER_CONCURRENCY: '4', LOG_LEVEL: 'error', ...env, ...twilioEnv(twilio.url) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => doomed!.once('exit', (_code, signal) => resolve(signal)));

    const ids: string[] = [];
    for (let i = 0; i < MESSAGES; i++) ids.push((await messages.schedule({ message: `crash test ${i}` })).id);

    // Kill it while requests are in flight: some delivered, some sent but unrecorded, some untouched.
    await twilio.waitForRequests(10);
    doomed.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const deliveredBeforeKill = feed.seen.filter((e) => e.event === 'messageDelivered').length;

    survivor = await startTestWorker(prefix, { ...env, ...twilioEnv(twilio.url) });
    const killedAt = Date.now();
    await feed.waitForCount('messageDelivered', MESSAGES, 30_000);
    const takeoverMs = Date.now() - killedAt;

    for (const id of ids) expect((await messages.get(id)).status, id).toBe('delivered');
    const deliveredEvents = feed.seen.filter((e) => e.event === 'messageDelivered').map((e) => e.messageId);
    expect(new Set(deliveredEvents).size).toBe(MESSAGES);
    expect(deliveredEvents).toHaveLength(MESSAGES);
    expect(feed.seen.some((e) => e.event === 'messageFailed')).toBe(false);
    const listed = (await messages.store.list('default', 'delivered', { limit: 500 })).messages.map((m) => m.id);
    expect([...listed].sort()).toEqual([...ids].sort());

    const sends = new Map<string, number>();
    for (const r of twilio.requests) {
      const body = new URLSearchParams(r.body).get('Body')!;
      sends.set(body, (sends.get(body) ?? 0) + 1);
    }
    expect(sends.size).toBe(MESSAGES);
    const duplicates = twilio.requests.length - MESSAGES;
    console.log(
      `crash recovery: ${MESSAGES} messages, ${deliveredBeforeKill} delivered before SIGKILL, ${twilio.requests.length} provider requests, ` +
        `${duplicates} duplicate sends (in flight when the worker died; at-least-once to the provider, exactly once in the records), ` +
        `all delivered ${takeoverMs} ms after the survivor started (the dead worker's locks would have lasted 62 s)`,
    );
  });
});
