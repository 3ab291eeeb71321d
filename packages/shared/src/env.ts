import { Type, type Static, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { TENANT_PATTERN } from './tenants.js';

/** Raised for a bad configuration value; the message is one line a user can act on. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** An environment variable holding an integer in a range. */
export const EnvInt = (defaultValue: number, minimum: number, maximum = Number.MAX_SAFE_INTEGER) =>
  Type.Integer({ default: defaultValue, minimum, maximum });

/** An environment variable holding a number in a range. */
export const EnvNumber = (defaultValue: number, minimum: number, maximum: number) =>
  Type.Number({ default: defaultValue, minimum, maximum });

export const EnvBool = (defaultValue: boolean) => Type.Boolean({ default: defaultValue });

export const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
  { default: 'info' },
);

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Settings both apps read: where Redis is and how keys are named. */
export const CommonEnv = {
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** `host:port,host:port,…` of Redis Cluster nodes (any few masters; the rest are discovered), instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[^\\s,]+:[0-9]{1,5}(,[^\\s,]+:[0-9]{1,5})*$' })),
  QUEUE_PREFIX: Type.String({ default: 'punctual', pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
  QUEUE_PARTITIONS: EnvInt(1, 1, 1024),
  /** Events each partition's feed stream keeps (approximate MAXLEN trim): how far back `?since=` can replay. */
  EVENTS_MAX_LEN: EnvInt(100_000, 100),
  /** Days delivered, failed and canceled records are kept; fractions allowed (tests use tiny ones). */
  RETENTION_DAYS: Type.Number({ default: 30, exclusiveMinimum: 0, maximum: 36_500 }),
  LOG_LEVEL: LogLevel,
  NODE_ENV: Type.String({ default: 'development' }),
};

/**
 * Reads the variables a schema names from an environment: defaults applied, strings converted,
 * the first bad value reported as `NAME problem`, with `(got "value")` only for numbers, switches
 * and fixed choices: text may be a secret or a URL carrying credentials. Empty strings count as unset.
 */
export function parseEnv<P extends TProperties>(
  schema: TObject<P>,
  env: Record<string, string | undefined>,
): Static<TObject<P>> {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(schema.properties)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const value = Value.Convert(schema, Value.Default(schema, raw));
  const error = Value.Errors(schema, value).First();
  if (error) {
    const name = error.path.replace(/^\//, '');
    const property = schema.properties[name];
    const shown = property && isHarmless(property) ? ` (got "${String(env[name] ?? '').slice(0, 40)}")` : '';
    // only the first letter: the rest may be a pattern, whose case matters
    const problem = error.message.charAt(0).toLowerCase() + error.message.slice(1);
    throw new ConfigError(`Invalid configuration: ${name} ${problem}${shown}`);
  }
  return value as Static<TObject<P>>;
}

/** The settings both apps read, from CommonEnv. */
export interface CommonConfig {
  /** Unset: 127.0.0.1:6379, else a redis-server spawned from PATH (the embedded default). */
  redisUrl?: string;
  /** REDIS_CLUSTER_NODES: a Redis Cluster instead of REDIS_URL. */
  redisClusterNodes?: ClusterNodeAddress[];
  queuePrefix: string;
  partitions: number;
  /** Events each partition's feed stream keeps. */
  eventsMaxLen: number;
  /** RETENTION_DAYS in ms. */
  retentionMs: number;
  logLevel: string;
  nodeEnv: string;
}

type CommonValues = Static<TObject<typeof CommonEnv>>;

export function commonConfig(e: CommonValues): CommonConfig {
  return {
    redisUrl: e.REDIS_URL,
    redisClusterNodes: clusterNodesOf(e),
    queuePrefix: e.QUEUE_PREFIX,
    partitions: e.QUEUE_PARTITIONS,
    eventsMaxLen: e.EVENTS_MAX_LEN,
    retentionMs: Math.round(e.RETENTION_DAYS * DAY_MS),
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
  };
}

/** A number, a switch or one of fixed words: a value that is never a secret or a URL. */
function isHarmless(schema: TSchema): boolean {
  if (schema.type === 'integer' || schema.type === 'number' || schema.type === 'boolean') return true;
  const choices = schema.anyOf as TSchema[] | undefined;
  return Array.isArray(choices) && choices.every((choice) => choice.const !== undefined);
}

/** A Redis Cluster node to start discovery from. */
export interface ClusterNodeAddress {
  host: string;
  port: number;
}

/**
 * The REDIS_CLUSTER_NODES list, or undefined when it is unset. It replaces REDIS_URL, so both at
 * once is a configuration error rather than a guess at which one was meant.
 */
export function clusterNodesOf(e: { REDIS_URL?: string; REDIS_CLUSTER_NODES?: string }): ClusterNodeAddress[] | undefined {
  if (e.REDIS_CLUSTER_NODES === undefined) return undefined;
  if (e.REDIS_URL !== undefined) {
    throw new ConfigError('Invalid configuration: set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both');
  }
  return e.REDIS_CLUSTER_NODES.split(',').map((entry, i) => {
    const colon = entry.lastIndexOf(':');
    const port = Number(entry.slice(colon + 1));
    if (port < 1 || port > 65535) {
      throw new ConfigError(`Invalid configuration: REDIS_CLUSTER_NODES entry ${i + 1}: port must be 1-65535`);
    }
    return { host: entry.slice(0, colon), port };
  });
}

/** An entry of a `tenant:secret` list; `entry` is its position (from 1), which errors name instead of the secret. */
export interface TenantPair {
  tenant: string;
  secret: string;
  entry: number;
}

const TENANT = new RegExp(TENANT_PATTERN);

/**
 * `tenant:secret` entries (API_KEYS, CALLBACK_SECRETS…) separated by commas or new lines; `#`
 * starts a comment. An entry that is not one is an error naming `source` and the entry's position,
 * never its content (the content is a secret); `format` is how it describes a valid entry.
 */
export function parseTenantPairs(text: string, source: string, format: string): TenantPair[] {
  const entries = text
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  return entries.map((entry, i) => {
    const colon = entry.indexOf(':');
    const tenant = entry.slice(0, colon);
    const secret = entry.slice(colon + 1);
    if (colon < 0 || !TENANT.test(tenant) || secret === '' || /\s/.test(secret)) {
      throw new ConfigError(`Invalid configuration: ${source} entry ${i + 1} must be ${format}`);
    }
    return { tenant, secret, entry: i + 1 };
  });
}
