import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, ConfigError, EnvBool, EnvInt, TENANT_PATTERN, commonConfig, parseEnv, parseTenantPairs, publicBaseUrl, type CommonConfig } from '@punctual/shared';
import { hashApiKey } from '@punctual/store';

const ApiEnv = Type.Object({
  ...CommonEnv,
  PORT: EnvInt(4000, 0, 65535),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  WS_ALLOWED_ORIGINS: Type.Optional(Type.String()),
  WS_PING_INTERVAL_MS: EnvInt(30_000, 10, 3_600_000),
  WS_MAX_BUFFERED_BYTES: EnvInt(1024 * 1024, 1024),
  WS_MAX_CLIENTS_PER_TENANT: EnvInt(100, 1),
  API_KEYS: Type.Optional(Type.String()),
  API_KEYS_FILE: Type.Optional(Type.String()),
  API_KEYS_REQUIRED: EnvBool(false),
  FAILED_KEY_LIMIT: EnvInt(20, 0),
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9:./]+(,[A-Za-z0-9:./]+)*$' })),
  RATE_LIMIT_MAX: EnvInt(6000, 0),
  RATE_LIMIT_WINDOW_MS: EnvInt(60_000, 1),
  MAX_SCHEDULED_PER_TENANT: EnvInt(500_000, 1),
  CORS_ORIGINS: Type.Optional(Type.String()),
  ADMIN_API_KEY: Type.Optional(Type.String({ minLength: 16 })),
  READY_REQUIRE_WORKER_MS: EnvInt(30_000, 0, 86_400_000),
  PUBLIC_BASE_URL: Type.Optional(Type.String()),
  TWILIO_AUTH_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  WHATSAPP_APP_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  WHATSAPP_VERIFY_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
});

/** A configured API key, kept only as its sha256. */
export interface StaticApiKey {
  tenant: string;
  keyHash: string;
}

/** Window for counting live workers when READY_REQUIRE_WORKER_MS is 0 (workers not required). */
const DEFAULT_WORKER_WINDOW_MS = 30_000;

export interface ApiConfig extends CommonConfig {
  port: number;
  host: string;
  /** Opens the queue dashboard (/admin/queues) to requests carrying this key. */
  adminApiKey?: string;
  /** /ready is 503 when no worker was seen for this long; 0 = workers are not required. */
  readyRequireWorkerMs: number;
  /** A worker heartbeat this recent counts as a live worker (/ready, /metrics). */
  workerWindowMs: number;
  /** Browser origins allowed to open the live feed; empty = any. */
  wsAllowedOrigins: string[];
  wsPingIntervalMs: number;
  /** Unsent bytes a feed client may accumulate before it is dropped as too slow. */
  wsMaxBufferedBytes: number;
  /** Live-feed connections one tenant may have open on this API instance. */
  wsMaxClientsPerTenant: number;
  /** From API_KEYS and API_KEYS_FILE; keys created with `pnpm keys` live in Redis. */
  apiKeys: StaticApiKey[];
  /** API_KEYS_REQUIRED: never open dev mode; with no key yet, start and answer 401 until one exists. */
  apiKeysRequired: boolean;
  /** Unknown keys one address may present per minute before it gets 429; 0 = no limit. */
  failedKeyLimit: number;
  /**
   * TRUST_PROXY: which proxies' X-Forwarded-For gives the client address (per-address limits,
   * logs): true = any, a comma list of addresses or CIDRs = those; unset = none.
   */
  trustProxy: boolean | string;
  /** Requests per tenant per window; 0 = no limit. */
  rateLimit: { max: number; windowMs: number };
  maxScheduledPerTenant: number;
  /** Origins allowed by CORS; empty = no cross-origin access; `*` = any. */
  corsOrigins: string[];
  /** The providers' webhooks: a route whose secrets are unset answers 404. */
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /** PUBLIC_BASE_URL without a trailing slash: the URL Twilio signs is this + path + query. */
  publicBaseUrl?: string;
  twilioAuthToken?: string;
  whatsappAppSecret?: string;
  whatsappVerifyToken?: string;
}

const ORIGIN = /^https?:\/\/[^/\s]+$/;

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const e: Static<typeof ApiEnv> = parseEnv(ApiEnv, env);
  return {
    ...commonConfig(e),
    port: e.PORT,
    host: e.HOST,
    adminApiKey: e.ADMIN_API_KEY,
    readyRequireWorkerMs: e.READY_REQUIRE_WORKER_MS,
    workerWindowMs: e.READY_REQUIRE_WORKER_MS || DEFAULT_WORKER_WINDOW_MS,
    wsAllowedOrigins: parseOrigins(e.WS_ALLOWED_ORIGINS),
    wsPingIntervalMs: e.WS_PING_INTERVAL_MS,
    wsMaxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
    wsMaxClientsPerTenant: e.WS_MAX_CLIENTS_PER_TENANT,
    apiKeys: [
      ...parseApiKeys(e.API_KEYS ?? '', 'API_KEYS'),
      ...(e.API_KEYS_FILE ? parseApiKeys(readKeysFile(e.API_KEYS_FILE), 'API_KEYS_FILE') : []),
    ],
    apiKeysRequired: e.API_KEYS_REQUIRED,
    failedKeyLimit: e.FAILED_KEY_LIMIT,
    trustProxy: trustProxyOf(e.TRUST_PROXY),
    rateLimit: { max: e.RATE_LIMIT_MAX, windowMs: e.RATE_LIMIT_WINDOW_MS },
    maxScheduledPerTenant: e.MAX_SCHEDULED_PER_TENANT,
    corsOrigins: parseOrigins(e.CORS_ORIGINS, { cors: true }),
    webhooks: {
      publicBaseUrl: publicBaseUrl(e.PUBLIC_BASE_URL),
      twilioAuthToken: e.TWILIO_AUTH_TOKEN,
      whatsappAppSecret: e.WHATSAPP_APP_SECRET,
      whatsappVerifyToken: e.WHATSAPP_VERIFY_TOKEN,
    },
  };
}

/**
 * `tenant:key` entries (see parseTenantPairs), each key kept as its sha256. A key given to two
 * tenants is an error: a request presenting it could not be told apart.
 */
export function parseApiKeys(text: string, source: string): StaticApiKey[] {
  const owners = new Map<string, string>();
  return parseTenantPairs(text, source, `tenant:key (tenant matching ${TENANT_PATTERN}, key without spaces)`).map(({ tenant, secret, entry }) => {
    const keyHash = hashApiKey(secret);
    const owner = owners.get(keyHash);
    if (owner !== undefined && owner !== tenant) {
      throw new ConfigError(`Invalid configuration: ${source} entry ${entry} gives tenant ${tenant} the key of tenant ${owner}`);
    }
    owners.set(keyHash, tenant);
    return { tenant, keyHash };
  });
}

function readKeysFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`Invalid configuration: API_KEYS_FILE cannot be read (${reason}: ${path})`);
  }
}

/**
 * A comma list of origins. `cors`: CORS_ORIGINS, which may be `*` and goes to @fastify/cors as
 * written; otherwise WS_ALLOWED_ORIGINS, lowercased and without a trailing slash, as the feed
 * compares them with the Origin header. Errors name the entry by position: a configuration error
 * never echoes a URL.
 */
function parseOrigins(value: string | undefined, { cors = false } = {}): string[] {
  const origins = (value ?? '')
    .split(',')
    .map((o) => (cors ? o.trim() : o.trim().replace(/\/$/, '').toLowerCase()))
    .filter(Boolean);
  const bad = origins.findIndex((o) => !ORIGIN.test(o) && !(cors && o === '*'));
  if (bad < 0) return origins;
  throw new ConfigError(
    cors
      ? `Invalid configuration: CORS_ORIGINS entry ${bad + 1} must be * or scheme://host[:port]`
      : `Invalid configuration: WS_ALLOWED_ORIGINS entry ${bad + 1} is not an origin: use a comma list like https://app.example.com`,
  );
}

function trustProxyOf(value: string | undefined): boolean | string {
  if (value === undefined || value === 'false') return false;
  return value === 'true' ? true : value;
}
