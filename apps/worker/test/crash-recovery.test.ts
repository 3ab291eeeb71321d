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
/** A short provider deadline keeps the lock (and so the take-over after a kill) at its 6 s floor. */
const env = { PROVIDER_TIMEOUT_MS: '2000', RECONCILE_INTERVAL_MS: '60000' };

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
    await feed.waitForCount('messageDelivered', MESSAGES, 30_000);

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
        `${duplicates} duplicate sends (in flight when the worker died; at-least-once to the provider, exactly once in the records)`,
    );
  });
});
