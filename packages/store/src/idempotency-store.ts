import { createHash, randomBytes } from 'node:crypto';
import type { Keyspace } from './keys.js';
import type { RedisClient } from './redis.js';

/** What `begin` found under an idempotency key. */
export type IdempotencyClaim =
  | { state: 'claimed'; token: string }
  | { state: 'pending'; bodyHash: string }
  | { state: 'done'; bodyHash: string; statusCode: number; body: string };

export interface IdempotencyOptions {
  /** How long a claim stays while its request runs; a crashed request frees the key after it. */
  pendingMs: number;
  /** How long a finished response is replayed. */
  keepMs: number;
}

interface Stored {
  state: 'pending' | 'done';
  bodyHash: string;
  token?: string;
  statusCode?: number;
  body?: string;
}

/** KEYS[1]: the idempotency key. ARGV: pending value, pending ms. The stored value, or nil once claimed. */
const BEGIN = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** KEYS[1]: the idempotency key. ARGV: our pending value, new value ('' deletes), ms to keep. */
const SETTLE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

type Commands = {
  idempotencyBegin(key: string, value: string, ms: number): Promise<string | null>;
  idempotencySettle(key: string, expected: string, value: string, ms: number): Promise<number>;
};

/**
 * Responses of create requests that carried an `Idempotency-Key`, per tenant. The first request
 * claims the key atomically (one Lua script, so two API instances cannot both claim it), then
 * stores its response in place of the claim, or frees the key when it failed.
 */
export class IdempotencyStore {
  private readonly redis: RedisClient & Commands;

  constructor(
    redis: RedisClient,
    private readonly keys: Keyspace,
    private readonly options: IdempotencyOptions,
  ) {
    if (!('idempotencyBegin' in redis)) {
      redis.defineCommand('idempotencyBegin', { numberOfKeys: 1, lua: BEGIN });
      redis.defineCommand('idempotencySettle', { numberOfKeys: 1, lua: SETTLE });
    }
    this.redis = redis as RedisClient & Commands;
  }

  async begin(tenant: string, key: string, bodyHash: string): Promise<IdempotencyClaim> {
    const token = randomBytes(12).toString('hex');
    const pending = JSON.stringify({ state: 'pending', bodyHash, token } satisfies Stored);
    const current = await this.redis.idempotencyBegin(this.redisKey(tenant, key), pending, this.options.pendingMs);
    if (current === null) return { state: 'claimed', token };
    const stored = JSON.parse(current) as Stored;
    if (stored.state === 'pending') return { state: 'pending', bodyHash: stored.bodyHash };
    return { state: 'done', bodyHash: stored.bodyHash, statusCode: stored.statusCode!, body: stored.body! };
  }

  /** Replaces our claim with the response to replay. */
  async complete(tenant: string, key: string, bodyHash: string, token: string, statusCode: number, body: string) {
    const done = JSON.stringify({ state: 'done', bodyHash, statusCode, body } satisfies Stored);
    await this.settle(tenant, key, bodyHash, token, done, this.options.keepMs);
  }

  /** Frees our claim so the client can try again. */
  async abandon(tenant: string, key: string, bodyHash: string, token: string) {
    await this.settle(tenant, key, bodyHash, token, '', 0);
  }

  private async settle(tenant: string, key: string, bodyHash: string, token: string, value: string, ms: number) {
    const pending = JSON.stringify({ state: 'pending', bodyHash, token } satisfies Stored);
    await this.redis.idempotencySettle(this.redisKey(tenant, key), pending, value, ms);
  }

  private redisKey(tenant: string, key: string): string {
    return this.keys.idempotency(tenant, createHash('sha256').update(key).digest('hex'));
  }
}
