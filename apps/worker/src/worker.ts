import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { QUEUES, type CallbackJobData, type DeliveryJobData } from '@punctual/shared';
import type { Registry } from 'prom-client';
import {
  DELIVERY_WORKER_KEEP_JOBS,
  Keyspace,
  Maintenance,
  Pacer,
  Scheduler,
  WorkerHeartbeats,
  connectRedis,
  createRedisConnection,
  type RedisClient,
  type RedisTarget,
} from '@punctual/store';
import type { WorkerConfig } from './config.js';
import { createChannelRegistry, type ChannelRegistry } from './channels/registry.js';
import { deliverMessage, fullJitterBackoff } from './processors/deliver-message.js';
import { sendCallback } from './processors/send-callback.js';
import { SlowReceivers, TenantSlots } from './callbacks/fair-share.js';
import { guardedLookup } from './callbacks/address-guard.js';
import { createHttpAgent } from './http-client.js';
import { startReconciler } from './reconciler.js';
import { startDueAlarm } from './due-alarm.js';
import { createWorkerMetrics } from './metrics.js';
import { DeliveryPacing } from './pacing.js';
import { newWorkerId, startHeartbeat } from './heartbeat.js';
import { startClaimRecovery } from './claim-recovery.js';
import { startRetentionSweeper } from './retention-sweeper.js';
import { withSafeErrors } from './log-redaction.js';
import { startSuppressionRepair } from './suppression-repair.js';
import { startReceiptTasks } from './receipts.js';
import { createTwilioLookup } from './channels/twilio-lookup.js';

/**
 * Lock and stalled-check timing. The lock is PROVIDER_TIMEOUT_MS + LOCK_MARGIN_MS (at least
 * MIN_LOCK_MS), so it always outlasts one provider request: a live worker whose lock renewal
 * (every lock / 2) is held up by a slow event loop still finishes its request before anyone else
 * may take the job. A worker that dies does not wait for that: its Redis connection closes, the
 * claim recovery (claim-recovery.ts) gives its jobs' locks up within about two seconds, and the
 * stalled check (every STALLED_MS) hands them to another worker.
 */
export const MIN_LOCK_MS = 6000;
export const LOCK_MARGIN_MS = 2000;
export const STALLED_MS = 1000;

export function lockDurationFor(providerTimeoutMs: number): number {
  return Math.max(MIN_LOCK_MS, providerTimeoutMs + LOCK_MARGIN_MS);
}

export interface DeliveryWorkerOptions {
  config: WorkerConfig;
  /** Where Redis is: one server or a Cluster; every connection below goes there. */
  redis: RedisTarget;
  log: Logger;
  channels?: ChannelRegistry;
}

export interface DeliveryWorker {
  workers: Worker<DeliveryJobData>[];
  redis: RedisClient;
  callbackWorkers: Worker<CallbackJobData>[];
  channels: ChannelRegistry;
  /** The channels' rates and the provider pauses this worker knows of. */
  pacing: DeliveryPacing;
  /** This process's metrics (WORKER_PORT /metrics). */
  metrics: Registry;
  close(): Promise<void>;
}

/** Starts one delivery and one callback BullMQ worker per partition, the reconciler and the due alarms. */
export async function startDeliveryWorker({ config, redis: target, log: givenLog, channels }: DeliveryWorkerOptions): Promise<DeliveryWorker> {
  // Redis client errors quote the failed command's arguments: every error logged below is stripped of them
  const log = withSafeErrors(givenLog);
  const providerAgent = createHttpAgent({ timeoutMs: config.providerTimeoutMs });
  // before any connection: a production worker without providers refuses to start
  const registry = channels ?? createChannelRegistry(config, providerAgent);
  const workerId = newWorkerId();
  const keyspace = new Keyspace({ prefix: config.queuePrefix, partitions: config.partitions });
  // named: while this connection is open this process lives (see startClaimRecovery)
  const redis = createRedisConnection(target, 'worker', { connectionName: keyspace.workerConnection(workerId) });
  redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  await connectRedis(redis, 30_000);
  await warnOnLowHz(redis, log);

  const lockDuration = lockDurationFor(config.providerTimeoutMs);
  const scheduler = await Scheduler.create(redis, { keyspace, eventsMaxLen: config.eventsMaxLen, retentionMs: config.retentionMs });
  const maintenance = new Maintenance(redis, keyspace, config.eventsMaxLen, config.retentionMs);
  const callbackAgent = createHttpAgent({
    timeoutMs: config.callbacks.timeoutMs,
    ...(config.callbacks.allowPrivate ? {} : { lookup: guardedLookup() }),
  });
  const metrics = createWorkerMetrics();
  const pacer = new Pacer(redis, keyspace);
  const pacing = new DeliveryPacing({ pacer, store: scheduler.store, rates: config.pacing.rates, observe: metrics.pacing });
  const deliverDeps = {
    scheduler,
    workerId,
    channels: metrics.timed(registry),
    log,
    maxAttempts: config.deliveryAttempts,
    backoff: fullJitterBackoff(config.deliveryBackoffMs, 5 * 60_000),
    pacing,
    throttleMaxMs: config.pacing.throttleMaxMs,
    observe: metrics.observer,
    receiptLookupAfterMs: config.receiptPollAfterMs,
  };
  const callbackDeps = {
    dispatcher: callbackAgent,
    secret: config.callbacks.secret,
    tenantSecrets: config.callbacks.tenantSecrets,
    allowPrivate: config.callbacks.allowPrivate,
    timeoutMs: config.callbacks.timeoutMs,
    slots: new TenantSlots(config.callbacks.tenantConcurrency),
    // a receiver that timed out sits out twice the timeout, then gets one probe
    receivers: new SlowReceivers(2 * config.callbacks.timeoutMs),
  };
  const timing = { lockDuration, stalledInterval: STALLED_MS, maxStalledCount: 3, autorun: true };

  const workers = keyspace.allTags().map(
    (prefix) =>
      new Worker<DeliveryJobData>(QUEUES.deliveries.name, (job, token) => deliverMessage(job, token, deliverDeps), {
        connection: createRedisConnection(target, 'worker'),
        prefix,
        concurrency: config.concurrency,
        ...DELIVERY_WORKER_KEEP_JOBS,
        ...timing,
      }),
  );
  for (const worker of workers) {
    worker.on('error', (err) => log.warn({ err }, 'worker error'));
    worker.on('failed', (job, err) => log.error({ messageId: job?.id, err }, 'delivery job failed unexpectedly'));
  }
  // Their own queue and workers: a slow or dead callback receiver never holds up a delivery.
  const callbackWorkers = keyspace.allTags().map(
    (prefix) =>
      new Worker<CallbackJobData>(QUEUES.callbacks.name, (job, token) => sendCallback(job, token, callbackDeps), {
        connection: createRedisConnection(target, 'worker'),
        prefix,
        concurrency: config.concurrency,
        ...timing,
        lockDuration: lockDurationFor(config.callbacks.timeoutMs),
      }),
  );
  for (const worker of callbackWorkers) {
    worker.on('error', (err) => log.warn({ err }, 'callback worker error'));
    worker.on('failed', (job, err) => {
      const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError';
      log[final ? 'warn' : 'info']({ messageId: job?.data.record.id, tenant: job?.data.tenant, attempt: job?.attemptsMade, error: err.message }, final ? 'callback given up' : 'callback will be retried');
    });
  }
  // closing a BullMQ worker whose connections are still starting rejects where nobody listens
  await Promise.all([...workers, ...callbackWorkers].map((w) => w.waitUntilReady()));
  const stopAlarms = workers.map((worker) => startDueAlarm(redis, worker));
  const stopPacing = pacing.start();
  const stopReconciler = startReconciler({ redis, maintenance, deliveries: scheduler.deliveries, pacer, log }, config.reconcileIntervalMs);
  const stopSweeper = startRetentionSweeper(
    { maintenance, keys: keyspace, callbacks: scheduler.callbacks, retentionMs: config.retentionMs },
    log,
    config.reconcileIntervalMs,
  );
  const stopSuppressionRepair = startSuppressionRepair(scheduler.suppressions, log, config.reconcileIntervalMs);
  const lookUp = config.twilio ? createTwilioLookup(config.twilio, providerAgent, config.providerTimeoutMs) : undefined;
  const stopReceiptTasks = startReceiptTasks({ scheduler, lookUp, log }, config.reconcileIntervalMs);
  const heartbeats = new WorkerHeartbeats(redis, keyspace);
  const stopClaimRecovery = startClaimRecovery({ redis, keys: keyspace, maintenance, deliveries: scheduler.deliveries, heartbeats, log });
  const stopHeartbeat = await startHeartbeat(heartbeats, workerId, log);

  return {
    workers,
    redis,
    callbackWorkers,
    channels: registry,
    pacing,
    metrics: metrics.registry,
    async close() {
      for (const stop of stopAlarms) stop();
      stopPacing();
      await stopHeartbeat();
      await stopClaimRecovery();
      await stopReconciler();
      await stopSweeper();
      await stopSuppressionRepair();
      await stopReceiptTasks();
      // Lets in-flight jobs finish; what does not is taken over by another worker.
      await Promise.all([...workers, ...callbackWorkers].map((w) => w.close()));
      await Promise.all([...workers, ...callbackWorkers].map((w) => w.disconnect()));
      await scheduler.close();
      await Promise.all([providerAgent.close(), callbackAgent.close()]);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

async function warnOnLowHz(redis: RedisClient, log: Logger) {
  const hz = await redis.config('GET', 'hz').then((r) => Number((r as string[])[1]), () => NaN);
  if (hz < 100) {
    log.warn({ hz }, 'Redis hz is below 100: the due alarm keeps deliveries on time, but raise hz (e.g. 500) for timely lock and stalled checks');
  }
}
