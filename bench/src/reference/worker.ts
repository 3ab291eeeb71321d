/**
 * The minimal reference worker: a bare BullMQ worker with the product's concurrency and
 * keep-nothing options, whose processor does nothing (MODE=noop) or makes the product's Twilio
 * call to the fake provider (MODE=provider) from the job's own data (no record read, no state
 * written: the fastest honest way to make that call). It reports how many jobs it completed, and
 * when, to the benchmark over IPC.
 */
import { createServer } from 'node:http';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { REFERENCE_WORKER_KEEP_JOBS } from './keys.js';

interface Data {
  id: string;
  recipient?: string;
  message?: string;
}

const mode = process.env.MODE;
const providerUrl = process.env.PROVIDER_URL!;
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const progress = { completed: 0, firstAt: 0, lastAt: 0 };
// The product's pool settings; the pool's header and body timeouts bound each call, so no
// per-request AbortSignal (which costs ~10 µs of CPU a call).
const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000, connect: { timeout: 10_000 } });
const headers = {
  authorization: `Basic ${Buffer.from(`${process.env.TWILIO_ACCOUNT_SID}:${process.env.TWILIO_AUTH_TOKEN}`).toString('base64')}`,
  'content-type': 'application/x-www-form-urlencoded',
  accept: 'application/json',
};
const from = encodeURIComponent(process.env.TWILIO_FROM!);

/** The product's Twilio request (To, From, Body, form encoded); a non-2xx or no sid fails the job. */
async function send({ recipient, message }: Data): Promise<void> {
  const body = `To=${encodeURIComponent(`+${recipient!.replace(/^\+/, '')}`)}&From=${from}&Body=${encodeURIComponent(message ?? '')}`;
  const res = await request(providerUrl, { method: 'POST', headers, body, dispatcher: agent });
  const answer = (await res.body.json()) as { sid?: unknown };
  if (res.statusCode >= 300 || typeof answer.sid !== 'string') throw new Error(`provider answered ${res.statusCode}`);
}

const worker = new Worker<Data>('deliveries', mode === 'provider' ? (job) => send(job.data) : async () => {}, {
  connection,
  prefix: `{${process.env.QUEUE_PREFIX}}`,
  concurrency: 50,
  ...REFERENCE_WORKER_KEEP_JOBS,
});
worker.on('completed', () => {
  const now = Date.now();
  if (progress.completed === 0) progress.firstAt = now;
  progress.completed++;
  progress.lastAt = now;
});
let reported = -1;
const reporter = setInterval(() => {
  if (progress.completed !== reported) process.send?.(progress);
  reported = progress.completed;
}, 50);

const health = createServer((_req, res) => res.end('{"status":"ok"}'));
await worker.waitUntilReady();
health.listen(Number(process.env.WORKER_PORT), '127.0.0.1');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    clearInterval(reporter);
    health.close();
    await worker.close();
    await agent.close();
    connection.disconnect();
    process.exit(0);
  });
}
