/**
 * The minimal reference worker: a bare BullMQ worker, the product's concurrency, whose processor
 * does nothing (MODE=noop) or makes one provider HTTP call (MODE=http). It reports how many jobs
 * it completed, and when, to the benchmark over IPC.
 */
import { Agent, createServer, request } from 'node:http';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

interface Data {
  id: string;
  sendAt: number;
}

const mode = process.env.MODE;
const providerUrl = process.env.PROVIDER_URL!;
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const progress = { completed: 0, firstAt: 0, lastAt: 0 };
const agent = new Agent({ keepAlive: true, maxSockets: 50 });

/** One provider call over a keep-alive connection (node:http: far less CPU than fetch). */
function post(url: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode! < 300 ? resolve() : reject(new Error(`provider answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const worker = new Worker<Data>(
  'deliveries',
  async (job) => {
    if (mode === 'http') await post(providerUrl, JSON.stringify({ id: job.data.id, sendAt: job.data.sendAt }));
  },
  { connection, prefix: `{${process.env.QUEUE_PREFIX}}`, concurrency: 50 },
);
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
    connection.disconnect();
    process.exit(0);
  });
}
