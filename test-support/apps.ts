/** Builds the real API and worker of a test, on the test's own key prefix. */
import type { Worker } from 'bullmq';
import { pino, type DestinationStream, type Logger } from 'pino';
import { buildApp } from '../apps/api/src/app.js';
import { loadConfig as loadApiConfig } from '../apps/api/src/config.js';
import { loadConfig as loadWorkerConfig } from '../apps/worker/src/config.js';
import { startDeliveryWorker } from '../apps/worker/src/worker.js';
import type { ChannelRegistry } from '../apps/worker/src/channels/registry.js';
import { configuredRedisTarget } from '../packages/store/src/index.js';
import { afterAll, beforeAll } from 'vitest';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from './redis.js';

/** The API on the test's Redis, or on the Redis Cluster `env.REDIS_CLUSTER_NODES` names. */
export async function buildTestApp(
  prefix: string,
  env: Record<string, string> = {},
  url = redisUrl(),
  logger: false | DestinationStream = false,
) {
  const config = loadApiConfig({ QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  return buildApp({ config, redis: configuredRedisTarget(config) ?? { url }, logger });
}

export async function startTestWorker(
  prefix: string,
  env: Record<string, string> = {},
  options: { channels?: ChannelRegistry; url?: string; log?: Logger } = {},
) {
  const config = loadWorkerConfig({
    QUEUE_PREFIX: prefix,
    SIMULATED_LATENCY_MS: '0',
    RECONCILE_INTERVAL_MS: '60000',
    ...env,
  });
  return startDeliveryWorker({
    config,
    redis: configuredRedisTarget(config) ?? { url: options.url ?? redisUrl() },
    log: options.log ?? pino({ level: 'silent' }),
    channels: options.channels,
  });
}

/** Follows the jobs a BullMQ worker completes, from now on, so a test can wait for one. */
export class CompletedJobs {
  private readonly counts = new Map<string, number>();
  private waiters: { id: string; count: number; resolve: () => void }[] = [];
  private readonly listener = (job: { id?: string }) => {
    if (!job.id) return;
    this.counts.set(job.id, (this.counts.get(job.id) ?? 0) + 1);
    this.waiters = this.waiters.filter((w) => ((this.counts.get(w.id) ?? 0) >= w.count ? (w.resolve(), false) : true));
  };

  constructor(private readonly worker: Worker) {
    worker.on('completed', this.listener);
  }

  /** Resolves once the job with this id has completed `count` times in all. */
  waitFor(id: string, count = 1): Promise<void> {
    if ((this.counts.get(id) ?? 0) >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ id, count, resolve }));
  }

  stop(): void {
    this.worker.off('completed', this.listener);
  }
}

/**
 * An API, a worker (with `workerEnv`) and a feed watcher on a fresh prefix for the tests of one
 * file: started before them, closed and their keys removed after.
 */
export function useStack(name: string, workerEnv: Record<string, string> = {}) {
  const stack = { prefix: uniquePrefix(name) } as {
    prefix: string;
    app: Awaited<ReturnType<typeof buildTestApp>>;
    worker: Awaited<ReturnType<typeof startTestWorker>>;
    feed: FeedWatcher;
  };
  beforeAll(async () => {
    stack.app = await buildTestApp(stack.prefix);
    stack.worker = await startTestWorker(stack.prefix, workerEnv);
    stack.feed = await FeedWatcher.start(stack.prefix);
  });
  afterAll(async () => {
    await stack.worker?.close();
    await stack.app?.close();
    await stack.feed?.close();
    await deletePrefix(stack.prefix);
  });
  return stack;
}
