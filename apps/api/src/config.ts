import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, ConfigError, EnvInt, parseEnv } from '@punctual/shared';

const ApiEnv = Type.Object({
  ...CommonEnv,
  PORT: EnvInt(4000, 0, 65535),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  WS_ALLOWED_ORIGINS: Type.Optional(Type.String()),
  WS_PING_INTERVAL_MS: EnvInt(30_000, 10, 3_600_000),
  WS_MAX_BUFFERED_BYTES: EnvInt(1024 * 1024, 1024),
});

export interface ApiConfig {
  port: number;
  host: string;
  /** Unset: the embedded default (contract section 1). */
  redisUrl?: string;
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  logLevel: string;
  nodeEnv: string;
  /** Browser origins allowed to open the live feed; empty = any. */
  wsAllowedOrigins: string[];
  wsPingIntervalMs: number;
  /** Unsent bytes a feed client may accumulate before it is dropped as too slow. */
  wsMaxBufferedBytes: number;
}

const ORIGIN = /^https?:\/\/[^/\s]+$/;

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const e: Static<typeof ApiEnv> = parseEnv(ApiEnv, env);
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    partitions: e.QUEUE_PARTITIONS,
    eventsMaxLen: e.EVENTS_MAX_LEN,
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
    wsAllowedOrigins: originList(e.WS_ALLOWED_ORIGINS),
    wsPingIntervalMs: e.WS_PING_INTERVAL_MS,
    wsMaxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
  };
}

function originList(value: string | undefined): string[] {
  const origins = (value ?? '').split(',').map((o) => o.trim().replace(/\/$/, '').toLowerCase()).filter(Boolean);
  const bad = origins.find((o) => !ORIGIN.test(o));
  if (bad) throw new ConfigError(`Invalid configuration: WS_ALLOWED_ORIGINS must be a comma list of origins like https://app.example.com (got "${bad}")`);
  return origins;
}
