import { createHash, randomBytes } from 'node:crypto';
import { TENANT_PATTERN } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import type { RedisClient } from './redis.js';

/** What is kept of an API key: never the key itself, only its hash maps to this. */
export interface ApiKeyEntry {
  id: string;
  tenant: string;
  createdAt: string;
}

const TENANT = new RegExp(TENANT_PATTERN);

/** sha256 of a presented key, hex: keys are stored and compared by this alone. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * The API keys created with `pnpm keys`, in one Redis hash under the prefix. A lookup is one
 * HGET by the presented key's hash, so no comparison ever runs on the key's characters.
 *
 * Creating the first key also sets a marker that is never removed: from then on the deployment
 * requires keys, even once every key has been revoked (revoking the last key never reopens it).
 */
export class ApiKeyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
  ) {}

  /** A new random key for a tenant; the only time the key exists in clear. */
  async create(tenant: string, now = new Date()): Promise<{ key: string; entry: ApiKeyEntry }> {
    if (!TENANT.test(tenant)) throw new Error(`tenant must match ${TENANT_PATTERN}`);
    const key = `pk_${randomBytes(24).toString('base64url')}`;
    const entry: ApiKeyEntry = { id: `key_${randomBytes(6).toString('hex')}`, tenant, createdAt: now.toISOString() };
    // one slot ({prefix}), one transaction: no key exists without the marker
    const results = await this.redis
      .multi()
      .hset(this.keys.apiKeys(), hashApiKey(key), JSON.stringify(entry))
      .set(this.requiredMarker(), entry.createdAt, 'NX')
      .exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
    return { key, entry };
  }

  /**
   * Whether this deployment requires API keys: a key was created here once (revoked since or
   * not). A store that has keys but no marker (made before the marker existed) gets it now.
   */
  async required(): Promise<boolean> {
    const [marked, count] = await Promise.all([this.redis.exists(this.requiredMarker()), this.count()]);
    if (marked === 0 && count > 0) await this.redis.set(this.requiredMarker(), new Date().toISOString(), 'NX');
    return marked > 0 || count > 0;
  }

  async list(): Promise<ApiKeyEntry[]> {
    const all = await this.redis.hgetall(this.keys.apiKeys());
    return Object.values(all)
      .map((json) => JSON.parse(json) as ApiKeyEntry)
      .sort((a, b) => a.tenant.localeCompare(b.tenant) || a.createdAt.localeCompare(b.createdAt));
  }

  /** Removes the key with this id; the entry it removed, or null when there was none. */
  async revoke(id: string): Promise<ApiKeyEntry | null> {
    const all = await this.redis.hgetall(this.keys.apiKeys());
    for (const [hash, json] of Object.entries(all)) {
      const entry = JSON.parse(json) as ApiKeyEntry;
      if (entry.id === id) {
        await this.redis.hdel(this.keys.apiKeys(), hash);
        return entry;
      }
    }
    return null;
  }

  async find(keyHash: string): Promise<ApiKeyEntry | null> {
    const json = await this.redis.hget(this.keys.apiKeys(), keyHash);
    return json ? (JSON.parse(json) as ApiKeyEntry) : null;
  }

  /** The entries of several key hashes at once (null where there is none), in their order. */
  async findMany(keyHashes: string[]): Promise<(ApiKeyEntry | null)[]> {
    if (keyHashes.length === 0) return [];
    const found = await this.redis.hmget(this.keys.apiKeys(), ...keyHashes);
    return found.map((json) => (json ? (JSON.parse(json) as ApiKeyEntry) : null));
  }

  count(): Promise<number> {
    return this.redis.hlen(this.keys.apiKeys());
  }

  private requiredMarker(): string {
    return `${this.keys.apiKeys()}:required-since`;
  }
}
