import { createHash, randomBytes } from 'node:crypto';
import type { Keyspace } from './keys.js';
import type { RedisClient } from './redis.js';

/** What `begin` found under an idempotency key. */
export type IdempotencyClaim =
  /** This request holds the key now. `messageId` is the id its message must be created with. */
  | { state: 'claimed'; token: string; messageId: string; value: string; takenOver: boolean }
  /** Another request holds the key (its lease has not run out). */
  | { state: 'pending'; bodyHash: string }
  /** A request with another body failed with the key; its message may exist, so the key stays its. */
  | { state: 'abandoned'; bodyHash: string }
  | { state: 'done'; bodyHash: string; statusCode: number; body: string };

export interface IdempotencyOptions {
  /** How long a claim is held for its request; past it (a crashed or stuck request) a retry takes it over. */
  pendingMs: number;
  /** How long a key is kept: its response replayed, or its message id reserved for retries. */
  keepMs: number;
}

interface Stored {
  state: 'pending' | 'abandoned' | 'done';
  bodyHash: string;
  token?: string;
  /** The id the key's message is created with, whichever request ends up creating it. */
  messageId?: string;
  /** Epoch ms (Redis's clock) until which the pending request holds the key. */
  leaseUntil?: number;
  statusCode?: number;
  body?: string;
}

/**
 * KEYS[1]: the idempotency key. ARGV: body hash, token, message id for a new claim, pending ms,
 * keep ms. Reply {0, stored value} when the key is not ours to take; {1, our value} for a new
 * claim; {2, our value} when we take over a claim whose request failed (abandoned) or outlived
 * its lease, keeping its message id. Time is Redis's, so API instances' clocks do not matter.
 */
const BEGIN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local id = ARGV[3]
if current then
  local ok, stored = pcall(cjson.decode, current)
  if not ok or type(stored) ~= 'table' or stored.state == 'done' or stored.bodyHash ~= ARGV[1] then return {0, current} end
  if type(stored.messageId) ~= 'string' then return {0, current} end
  if stored.state == 'pending' and (tonumber(stored.leaseUntil) or math.huge) > now then return {0, current} end
  id = stored.messageId
end
local value = cjson.encode({state = 'pending', bodyHash = ARGV[1], token = ARGV[2], messageId = id, leaseUntil = now + tonumber(ARGV[4])})
redis.call('SET', KEYS[1], value, 'PX', ARGV[5])
if current then return {2, value} end
return {1, value}
`;

/** KEYS[1]: the idempotency key. ARGV: our pending value, new value ('' deletes), ms to keep. */
const SETTLE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

type Commands = {
  idempotencyBegin(key: string, bodyHash: string, token: string, messageId: string, pendingMs: number, keepMs: number): Promise<[number, string]>;
  idempotencySettle(key: string, expected: string, value: string, ms: number): Promise<number>;
};

/**
 * Responses of create requests that carried an `Idempotency-Key`, per tenant. The first request
 * claims the key atomically (one Lua script, so two API instances cannot both claim it) together
 * with the id its message will have. The key and that id are kept for `keepMs` whatever happens:
 *
 * - the request succeeds: its response replaces the claim and is replayed;
 * - it is refused (4xx, nothing written): the key is freed;
 * - it fails (5xx: Redis may have run the write before the reply was lost) or outlives its lease
 *   (crashed, stuck): a retry with the same body takes the claim over with the same message id,
 *   so the store's refusal of an id that exists makes a second message impossible.
 *
 * Every settle is a compare-and-set on the exact claim: a request whose claim was taken over
 * changes nothing.
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

  /** Claims the key for a request, with `messageId` as its message's id unless an earlier claim reserved one. */
  async begin(tenant: string, key: string, bodyHash: string, messageId: string): Promise<IdempotencyClaim> {
    const token = randomBytes(12).toString('hex');
    const [outcome, value] = await this.redis.idempotencyBegin(
      this.redisKey(tenant, key),
      bodyHash,
      token,
      messageId,
      this.options.pendingMs,
      this.options.keepMs,
    );
    const stored = JSON.parse(value) as Stored;
    if (outcome !== 0) return { state: 'claimed', token, messageId: stored.messageId!, value, takenOver: outcome === 2 };
    if (stored.state === 'done') return { state: 'done', bodyHash: stored.bodyHash, statusCode: stored.statusCode!, body: stored.body! };
    return { state: stored.state, bodyHash: stored.bodyHash };
  }

  /** Replaces our claim with the response to replay. */
  async complete(tenant: string, key: string, claim: Claimed, bodyHash: string, statusCode: number, body: string): Promise<boolean> {
    const done = JSON.stringify({ state: 'done', bodyHash, statusCode, body } satisfies Stored);
    return this.settle(tenant, key, claim, done, this.options.keepMs);
  }

  /** Frees the key: the request was refused and wrote nothing, the client may use the key for anything. */
  async release(tenant: string, key: string, claim: Claimed): Promise<boolean> {
    return this.settle(tenant, key, claim, '', 0);
  }

  /** Keeps the key and its message id for a retry of the same body, which takes it over at once. */
  async abandon(tenant: string, key: string, claim: Claimed, bodyHash: string): Promise<boolean> {
    const abandoned = JSON.stringify({ state: 'abandoned', bodyHash, messageId: claim.messageId } satisfies Stored);
    return this.settle(tenant, key, claim, abandoned, this.options.keepMs);
  }

  private async settle(tenant: string, key: string, claim: Claimed, value: string, ms: number): Promise<boolean> {
    return (await this.redis.idempotencySettle(this.redisKey(tenant, key), claim.value, value, ms)) === 1;
  }

  private redisKey(tenant: string, key: string): string {
    return this.keys.idempotency(tenant, createHash('sha256').update(key).digest('hex'));
  }
}

type Claimed = Extract<IdempotencyClaim, { state: 'claimed' }>;
