import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, DAY_MS, EnvInt, parseEnv } from '@punctual/shared';

const ApiEnv = Type.Object({
  ...CommonEnv,
  PORT: EnvInt(4000, 0, 65535),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
});

export interface ApiConfig {
  port: number;
  host: string;
  /** Unset: the embedded default (contract section 1). */
  redisUrl?: string;
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  retentionMs: number;
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
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
  };
}
