import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, DAY_MS, EnvInt, parseEnv } from '@punctual/shared';

const ApiEnv = Type.Object({
  ...CommonEnv,
  PORT: EnvInt(4000, 0, 65535),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  ADMIN_API_KEY: Type.Optional(Type.String({ minLength: 16 })),
  READY_REQUIRE_WORKER_MS: EnvInt(30_000, 0, 86_400_000),
});

/** Window for counting live workers when READY_REQUIRE_WORKER_MS is 0 (workers not required). */
const DEFAULT_WORKER_WINDOW_MS = 30_000;

export interface ApiConfig {
  port: number;
  host: string;
  /** Unset: the embedded default (contract section 1). */
  redisUrl?: string;
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  retentionMs: number;
  /** Opens the queue dashboard (/admin/queues) to requests carrying this key. */
  adminApiKey?: string;
  /** /ready is 503 when no worker was seen for this long; 0 = workers are not required. */
  readyRequireWorkerMs: number;
  /** A worker heartbeat this recent counts as a live worker (/ready, /metrics). */
  workerWindowMs: number;
  logLevel: string;
  nodeEnv: string;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const e: Static<typeof ApiEnv> = parseEnv(ApiEnv, env);
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    partitions: e.QUEUE_PARTITIONS,
    eventsMaxLen: e.EVENTS_MAX_LEN,
    retentionMs: Math.round(e.RETENTION_DAYS * DAY_MS),
    adminApiKey: e.ADMIN_API_KEY,
    readyRequireWorkerMs: e.READY_REQUIRE_WORKER_MS,
    workerWindowMs: e.READY_REQUIRE_WORKER_MS || DEFAULT_WORKER_WINDOW_MS,
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
  };
}
