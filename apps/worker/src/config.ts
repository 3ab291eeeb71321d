import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, DAY_MS, EnvInt, EnvNumber, parseEnv } from '@punctual/shared';

const WorkerEnv = Type.Object({
  ...CommonEnv,
  WORKER_CONCURRENCY: EnvInt(50, 1, 10_000),
  WORKER_PORT: EnvInt(4001, 0, 65535),
  DELIVERY_ATTEMPTS: EnvInt(5, 1, 100),
  RECONCILE_INTERVAL_MS: EnvInt(5000, 100, 3_600_000),
  SIMULATED_LATENCY_MS: EnvInt(50, 0, 60_000),
  SIMULATED_FAILURE_RATE: EnvNumber(0, 0, 1),
});

export interface WorkerConfig {
  redisUrl?: string;
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  retentionMs: number;
  logLevel: string;
  nodeEnv: string;
  concurrency: number;
  port: number;
  deliveryAttempts: number;
  reconcileIntervalMs: number;
  simulator: { latencyMs: number; failureRate: number };
}

export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const e: Static<typeof WorkerEnv> = parseEnv(WorkerEnv, env);
  return {
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    partitions: e.QUEUE_PARTITIONS,
    eventsMaxLen: e.EVENTS_MAX_LEN,
    retentionMs: Math.round(e.RETENTION_DAYS * DAY_MS),
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
    concurrency: e.WORKER_CONCURRENCY,
    port: e.WORKER_PORT,
    deliveryAttempts: e.DELIVERY_ATTEMPTS,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    simulator: { latencyMs: e.SIMULATED_LATENCY_MS, failureRate: e.SIMULATED_FAILURE_RATE },
  };
}
