import { Redis, type RedisOptions } from 'ioredis';

/**
 * The API fails fast (a request never waits for Redis: 1 s at most, no offline queue, so a write
 * that failed is never applied later); workers wait for Redis as long as it takes (BullMQ
 * requires `maxRetriesPerRequest: null` on them).
 */
export type RedisRole = 'api' | 'worker';

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

/** Connects and waits until the server answers, or throws after `timeoutMs`. */
export async function connectRedis(redis: Redis, timeoutMs = 5000): Promise<void> {
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
