import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { freePort } from '../packages/store/src/index.js';
import { buildTestApp } from '../test-support/apps.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';
import { loadConfig as loadWorkerConfig } from '../apps/worker/src/config.js';
import { startDeliveryWorker } from '../apps/worker/src/worker.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const RECIPIENT = '5511999999999';
const BODY = 'Hello from the API! secret-body-7f3a';

/** A worker process from the build, with its stdout kept and its start awaited. */
interface WorkerProcess {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

async function spawnWorker(prefix: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['apps/worker/dist/main.js'], {
    cwd: root,
    env: { ...process.env, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, WORKER_PORT: String(port), SIMULATED_LATENCY_MS: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('"worker started"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`worker exited early (${code}): ${output}`)));
  });
  return { child, port, output: () => output, exited };
}

async function stop(worker: WorkerProcess): Promise<number | null> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  return worker.exited;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one series in a Prometheus text exposition (0 when absent). */
function series(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

const prefix = uniquePrefix('e2e-ops');
let apis: FastifyInstance[] = [];
let feed: FeedWatcher;

beforeAll(() => {
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-b'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}, 180_000);
beforeAll(async () => {
  apis = [await buildTestApp(prefix), await buildTestApp(prefix)];
  feed = await FeedWatcher.start(prefix);
});
afterAll(async () => {
  await Promise.all(apis.map((app) => app.close()));
  await feed.close();
  await deletePrefix(prefix);
});

async function schedule(app: FastifyInstance, sendAt = Date.now()): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: RECIPIENT, message: BODY, sendAt, channel: 'whatsapp' } });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

it('two worker processes deliver; every API instance reports exactly that many, and logs carry no phone or body', async () => {
  const workers = [await spawnWorker(prefix), await spawnWorker(prefix)];
  try {
    const ready = await apis[0]!.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', workers: 2 });

    const count = 24;
    const ids = await Promise.all(Array.from({ length: count }, (_, i) => schedule(apis[i % 2]!, Date.now() + (i % 4) * 50)));
    for (const id of ids) await feed.waitFor('messageDelivered', id);

    for (const app of apis) {
      const text = (await app.inject({ url: '/metrics' })).body;
      expect(series(text, 'punctual_messages_total{outcome="scheduled",channel="whatsapp"}')).toBe(count);
      expect(series(text, 'punctual_messages_total{outcome="delivered",channel="whatsapp"}')).toBe(count);
      expect(series(text, 'punctual_messages_total{outcome="failed",channel="whatsapp"}')).toBe(0);
      expect(series(text, 'punctual_delivery_lateness_seconds_count')).toBe(count);
      expect(series(text, 'punctual_delivery_lateness_seconds_bucket{le="+Inf"}')).toBe(count);
      expect(series(text, 'punctual_delivery_lateness_seconds_sum')).toBeGreaterThanOrEqual(0);
      expect(series(text, 'punctual_workers')).toBe(2);
    }

    const workerTexts = await Promise.all(workers.map((w) => scrape(`http://127.0.0.1:${w.port}/metrics`)));
    const sum = (name: string) => workerTexts.reduce((total, text) => total + series(text, name), 0);
    expect(sum('punctual_worker_delivery_attempts_total{channel="whatsapp",outcome="delivered"}')).toBe(count);
    expect(sum('punctual_worker_provider_request_duration_seconds_count{channel="whatsapp",result="ok"}')).toBe(count);
    for (const text of workerTexts) expect(text).toContain('process_resident_memory_bytes');

    const logs = workers.map((w) => w.output()).join('');
    const delivered = logs.split('\n').filter((line) => line.includes('"msg":"delivered"'));
    expect(delivered).toHaveLength(count);
    for (const line of delivered) expect(JSON.parse(line)).toMatchObject({ messageId: expect.any(String), tenant: 'default', channel: 'whatsapp' });
    expect(logs).not.toContain(RECIPIENT);
    expect(logs).not.toContain('secret-body');
  } finally {
    expect(await Promise.all(workers.map(stop))).toEqual([0, 0]);
  }
  // a worker that stopped cleanly is no longer counted
  expect((await apis[1]!.inject({ url: '/ready' })).json()).toMatchObject({ status: 'not_ready', workers: 0 });
}, 60_000);

it('SIGTERM lets in-flight deliveries finish before the worker exits', async () => {
  const worker = await spawnWorker(prefix, { SIMULATED_LATENCY_MS: '1500' });
  let exitCode: number | null = null;
  try {
    const ids = await Promise.all([schedule(apis[0]!), schedule(apis[1]!), schedule(apis[0]!)]);
    for (const id of ids) await feed.waitFor('messageSending', id);
    exitCode = await stop(worker);
    // delivered by this worker before it exited: no other worker runs
    for (const id of ids) {
      expect(feed.events(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered']);
      expect((await apis[0]!.inject({ url: `/messages/${id}` })).json().data.status).toBe('delivered');
    }
  } finally {
    await stop(worker);
  }
  expect(exitCode).toBe(0);
}, 60_000);

it('the worker deletes records past RETENTION_DAYS, and no list shows them', async () => {
  const retentionPrefix = uniquePrefix('e2e-retention');
  const app = await buildTestApp(retentionPrefix, { RETENTION_DAYS: '0.00001' });
  const retentionFeed = await FeedWatcher.start(retentionPrefix);
  // the sweeper logs what it deleted: wait for both records in its log lines
  let expired = 0;
  let onExpired = () => {};
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          const entry = JSON.parse(line);
          if (entry.msg !== 'records past retention deleted') continue;
          expired += entry.expired;
          onExpired();
        }
        done();
      },
    }),
  );
  const allExpired = new Promise<void>((resolve) => (onExpired = () => expired >= 2 && resolve()));
  const worker = await startDeliveryWorker({
    config: loadWorkerConfig({ QUEUE_PREFIX: retentionPrefix, SIMULATED_LATENCY_MS: '0', RECONCILE_INTERVAL_MS: '100', RETENTION_DAYS: '0.00001' }),
    redis: { url: redisUrl() },
    log,
  });
  try {
    const delivered = await schedule(app);
    const canceled = await schedule(app, Date.now() + 3_600_000);
    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${canceled}` })).statusCode).toBe(200);
    await retentionFeed.waitFor('messageDelivered', delivered);
    await allExpired;
    expect(expired).toBe(2);
    for (const id of [delivered, canceled]) expect((await app.inject({ url: `/messages/${id}` })).statusCode).toBe(404);
    for (const list of ['/delivered', '/canceled', `/delivered?recipient=${RECIPIENT}`, '/canceled?channel=whatsapp']) {
      expect((await app.inject({ url: list })).json().messages).toEqual([]);
    }
  } finally {
    await worker.close();
    await app.close();
    await retentionFeed.close();
    await deletePrefix(retentionPrefix);
  }
}, 60_000);
