import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { QUEUE_NAMES, type DeliveryJobData } from '@punctual/shared';
import type { Registry } from 'prom-client';
import { DeliveryQueues, Keyspace, MessageStore, WorkerHeartbeats, connectRedis, createRedis, type RedisClient } from '@punctual/store';
import type { WorkerConfig } from './config.js';
import { createChannelRegistry, type ChannelRegistry } from './channels/registry.js';
import { deliverMessage, fullJitterBackoff } from './processors/deliver-message.js';
import { startReconciler } from './reconciler.js';
import { startDueAlarm } from './due-alarm.js';
import { createWorkerMetrics } from './metrics.js';
import { startHeartbeat } from './heartbeat.js';
import { startRetentionSweeper } from './retention-sweeper.js';

/**
 * Lock and stalled-check timing: a worker killed mid-delivery holds its job's lock for at most
 * LOCK_MS, and the stalled check runs every STALLED_MS, so another worker takes the job over
 * within ~9 s instead of BullMQ's default 60 s. Providers answer (or time out) well within the
 * lock, which BullMQ renews every LOCK_MS / 2.
 */
export const LOCK_MS = 6000;
export const STALLED_MS = 3000;

export interface DeliveryWorkerOptions {
  config: WorkerConfig;
  redisUrl: string;
  log: Logger;
  channels?: ChannelRegistry;
}

export interface DeliveryWorker {
  workers: Worker<DeliveryJobData>[];
  redis: RedisClient;
  channels: ChannelRegistry;
  /** This process's metrics (WORKER_PORT /metrics). */
  metrics: Registry;
  close(): Promise<void>;
}

/** Starts one BullMQ worker per partition, the reconciler and the due alarms. */
export async function startDeliveryWorker({ config, redisUrl, log, channels }: DeliveryWorkerOptions): Promise<DeliveryWorker> {
  const redis = createRedis(redisUrl, 'worker');
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  await connectRedis(redis, 30_000);
  await warnOnLowHz(redis, log);

  const keyspace = new Keyspace({ prefix: config.queuePrefix, partitions: config.partitions });
  const store = new MessageStore(redis, { keyspace, eventsMaxLen: config.eventsMaxLen, retentionMs: config.retentionMs });
  const deliveries = new DeliveryQueues(keyspace, redis);
  const registry = channels ?? createChannelRegistry(config);
  const metrics = createWorkerMetrics();
  const deps = {
    store,
    channels: metrics.timed(registry),
    log,
    maxAttempts: config.deliveryAttempts,
    backoff: fullJitterBackoff(1000, 5 * 60_000),
    observe: metrics.observer,
  };

  const workers = keyspace.allTags().map(
    (prefix) =>
      new Worker<DeliveryJobData>(QUEUE_NAMES.deliveries, (job, token) => deliverMessage(job, token, deps), {
        connection: createRedis(redisUrl, 'worker'),
        prefix,
        concurrency: config.concurrency,
        lockDuration: LOCK_MS,
        stalledInterval: STALLED_MS,
        maxStalledCount: 3,
        autorun: true,
      }),
  );
  for (const worker of workers) {
    worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));
    worker.on('failed', (job, err) => log.error({ messageId: job?.id, err }, 'delivery job failed unexpectedly'));
  }
  const stopAlarms = workers.map((worker) => startDueAlarm(redis, worker));
  const stopReconciler = startReconciler({ redis, store, deliveries, log }, config.reconcileIntervalMs);
  const stopSweeper = startRetentionSweeper(store, log, config.reconcileIntervalMs);
  const stopHeartbeat = await startHeartbeat(new WorkerHeartbeats(redis, keyspace), log);

  return {
    workers,
    redis,
    channels: registry,
    metrics: metrics.registry,
    async close() {
      for (const stop of stopAlarms) stop();
      await stopHeartbeat();
      await stopReconciler();
      await stopSweeper();
      // Lets in-flight deliveries finish; what does not is taken over by another worker.
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(workers.map((w) => w.disconnect()));
      await deliveries.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

async function warnOnLowHz(redis: ReturnType<typeof createRedis>, log: Logger) {
  const hz = await redis.config('GET', 'hz').then((r) => Number((r as string[])[1]), () => NaN);
  if (hz < 100) {
    log.warn({ hz }, 'Redis hz is below 100: the due alarm keeps deliveries on time, but raise hz (e.g. 500) for timely lock and stalled checks');
  }
}
