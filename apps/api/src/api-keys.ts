import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { hashApiKey, type ApiKeyStore } from '@punctual/store';
import type { StaticApiKey } from './config.js';

/** How long a key-store answer is reused: a revoked key stops working within this time. */
export const KEY_CACHE_MS = 5000;
const KEY_CACHE_SIZE = 10_000;

/** Who a presented key is: its tenant, and its hash when it lives in the key store (revocable). */
export interface KeyOwner {
  tenant: string;
  /** sha256 of a key-store key; '' for a configured one (API_KEYS, API_KEYS_FILE), which cannot be revoked while running. */
  storeKeyHash: string;
}

/**
 * The tenant of a presented API key. Keys are only ever handled as their sha256: the configured
 * ones are a map by hash, the CLI's are a Redis hash by hash, so no comparison runs on the
 * characters of a key and none depends on how much of a guess was right.
 */
export class ApiKeyResolver {
  private readonly configured: Map<string, string>;
  private readonly cache = new Map<string, { tenant: string | null; expires: number }>();

  constructor(
    configured: StaticApiKey[],
    private readonly store: ApiKeyStore,
  ) {
    this.configured = new Map(configured.map((k) => [k.keyHash, k.tenant]));
  }

  async resolve(key: string, now = Date.now()): Promise<KeyOwner | null> {
    const hash = hashApiKey(key);
    const configured = this.configured.get(hash);
    if (configured !== undefined) return { tenant: configured, storeKeyHash: '' };
    const cached = this.cache.get(hash);
    let tenant: string | null;
    if (cached && cached.expires > now) {
      tenant = cached.tenant;
    } else {
      tenant = (await this.store.find(hash))?.tenant ?? null;
      if (this.cache.size >= KEY_CACHE_SIZE) this.cache.clear();
      this.cache.set(hash, { tenant, expires: now + KEY_CACHE_MS });
    }
    return tenant === null ? null : { tenant, storeKeyHash: hash };
  }

  /** Drops what is cached about a key found revoked, so requests stop using it at once. */
  forget(keyHash: string): void {
    this.cache.delete(keyHash);
  }
}

/**
 * The key a request presents: `Authorization: Bearer <key>`, else `x-api-key`, else (WebSocket
 * upgrades only, as browsers cannot set headers on them) `?access_token=`.
 */
export function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  if (request.ws) {
    const token = (request.query as Record<string, unknown> | undefined)?.access_token;
    if (typeof token === 'string' && token !== '') return token;
  }
  return undefined;
}

/**
 * The check of a presented token against one configured secret (ADMIN_API_KEY,
 * WHATSAPP_VERIFY_TOKEN), whose sha256 is taken once: digests of one length compared in constant
 * time, so neither the time nor a length difference says anything about the secret.
 */
export function secretCheck(secret: string): (presented: string | undefined) => boolean {
  const expected = sha256(secret);
  return (presented) => presented !== undefined && timingSafeEqual(sha256(presented), expected);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
