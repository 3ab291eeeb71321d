import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ClusterNodeAddress } from '@punctual/shared';

/**
 * The API fails fast (a request never waits for Redis: 1 s at most, no offline queue, so a write
 * that failed is never applied later); workers wait for Redis as long as it takes (BullMQ
 * requires `maxRetriesPerRequest: null` on them).
 */
export type RedisRole = 'api' | 'worker';

/** A connection to one Redis server or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  api: {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
  },
  worker: {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
  },
};

export function createRedis(url: string, role: RedisRole, options: RedisOptions = {}): Redis {
  return new Redis(url, { lazyConnect: true, ...ROLE_OPTIONS[role], ...options });
}

/** Where Redis is: one server (REDIS_URL, or the embedded default) or a Redis Cluster. */
export type RedisTarget = { url: string } | { clusterNodes: ClusterNodeAddress[] };

/**
 * A connection with the role's behaviour on either kind of target. On a Cluster the per-command
 * options go to every node's connection (`redisOptions`) and the reconnect policy and offline
 * queue to the cluster client, which owns them there.
 */
export function createRedisConnection(target: RedisTarget, role: RedisRole, options: RedisOptions = {}): RedisClient {
  if ('url' in target) return createRedis(target.url, role, options);
  const { retryStrategy, enableOfflineQueue, ...nodeOptions } = ROLE_OPTIONS[role];
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { ...nodeOptions, ...options },
  };
  return new Cluster(target.clusterNodes, clusterOptions);
}

/** The target the configuration names; undefined when it names none (the embedded default then). */
export function configuredRedisTarget(config: { redisUrl?: string; redisClusterNodes?: ClusterNodeAddress[] }): RedisTarget | undefined {
  if (config.redisClusterNodes) return { clusterNodes: config.redisClusterNodes };
  return config.redisUrl ? { url: config.redisUrl } : undefined;
}

/** Every server holding data: the masters of a Cluster, or the one server. */
export function dataNodes(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** The target for logs, without credentials. */
export function describeRedisTarget(target: RedisTarget): string {
  if ('url' in target) return target.url.replace(/\/\/[^@]*@/, '//***@');
  return `cluster ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
}

/** Connects and waits until the server answers, or throws after `timeoutMs`. */
export async function connectRedis(redis: RedisClient, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'wait') redis.connect().catch(() => {});
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (redis.status === 'ready') {
      try {
        await redis.ping();
        return;
      } catch {
        // loading or just dropped: try again until the deadline
      }
    }
    if (Date.now() > deadline) throw new Error(`Redis did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a Redis server answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Lua scripts as commands of a connection (one key each: the key that routes the call on a Cluster). */
export function defineScripts(redis: RedisClient, scripts: Record<string, string>): void {
  for (const [name, lua] of Object.entries(scripts)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 1, lua });
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Loads every script defined on a connection into the server (each master of a Cluster): after
 * a NOSCRIPT inside a MULTI, where the client cannot resend a script by itself.
 */
export async function loadAllScripts(redis: RedisClient): Promise<void> {
  const scripts = Object.values((redis as unknown as { scriptsSet: Record<string, { lua: string }> }).scriptsSet);
  await Promise.all(dataNodes(redis).map((node) => Promise.all(scripts.map((script) => node.script('LOAD', script.lua)))));
}
