import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, DEFAULT_TENANT } from '@punctual/shared';
import { ApiKeyStore } from '@punctual/store';
import { ApiKeyResolver, presentedKey } from '../../api-keys.js';
import type { StaticApiKey } from '../../config.js';
import { TooManyFailedKeys, Unauthorized } from '../../errors.js';
import { FAILED_KEY_LIMITS, FailedKeyLimiter } from '../../failed-keys.js';
import { CLOSE_POLICY_VIOLATION } from '../../feed/subscriber.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Anyone may call the route: no API key, no tenant (probes, metrics, docs, console, webhooks). */
    public?: boolean;
  }
  interface FastifyInstance {
    /** False in open dev mode (no API key anywhere yet): every request is tenant `default`. */
    readonly authRequired: boolean;
  }
  interface FastifyRequest {
    /** The tenant the request's API key belongs to; '' on public routes. */
    tenant: string;
    /** sha256 of the key-store key the request authenticated with; '' for any other credential. */
    storeKeyHash: string;
  }
}

export function isPublicRoute(request: FastifyRequest): boolean {
  return request.routeOptions.config.public === true;
}

/**
 * How often the key store is checked again: open dev mode ends, and the live-feed clients of a
 * revoked key are closed, within this (plus one Redis round trip) of the change.
 */
export const KEY_RECHECK_MS = 2000;

const HOW_TO_ADD_KEYS =
  'create one with `pnpm keys create <tenant>` (in Docker: `docker compose exec api node apps/api/dist/cli/keys.js create <tenant>`), or set API_KEYS / API_KEYS_FILE';

/** Marks every route registered from here on in this context public (routes a third-party plugin adds). */
export function registerAsPublic(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, public: true } as typeof route.config;
  });
}

export interface AuthPluginOptions {
  apiKeys: StaticApiKey[];
  nodeEnv: string;
  /** API_KEYS_REQUIRED: never run open; with no key anywhere yet, answer 401 until one is created. */
  keysRequired: boolean;
  /** FAILED_KEY_LIMIT: unknown keys an address may present per minute before it gets 429; 0 = no limit. */
  failedKeyLimit: number;
}

/**
 * Every request acts for the tenant of its API key, found in an onRequest hook so it also guards
 * WebSocket upgrades. A tenant is never chosen by anything else the client sends.
 *
 * Open dev mode (no key configured, none ever created in the key store, not production, not
 * API_KEYS_REQUIRED) lasts until the first key is created anywhere: the store is checked every
 * KEY_RECHECK_MS, and a key created once keeps the deployment closed even after it is revoked.
 * The same check closes the live-feed connections of revoked keys. An address that presents too
 * many unknown keys is answered 429 before its key is looked up.
 */
export default fp(
  async (app, { apiKeys, nodeEnv, keysRequired, failedKeyLimit }: AuthPluginOptions) => {
    const store = new ApiKeyStore(app.redis, app.store.keys);
    const resolver = new ApiKeyResolver(apiKeys, store);
    const failures = failedKeyLimit > 0 ? new FailedKeyLimiter({ ...FAILED_KEY_LIMITS, max: failedKeyLimit }) : undefined;
    const anyKey = apiKeys.length > 0 || (await store.required());
    let open = !anyKey && !keysRequired;
    if (open && nodeEnv === 'production') {
      throw new ConfigError(
        'No API keys configured: set API_KEYS or API_KEYS_FILE, or create one with `pnpm keys create <tenant>` (required when NODE_ENV=production); ' +
          'or set API_KEYS_REQUIRED=true to start anyway and answer 401 until a key exists',
      );
    }
    app.decorate('authRequired', { getter: () => !open });
    app.decorateRequest('tenant', '');
    app.decorateRequest('storeKeyHash', '');

    if (open) {
      app.log.warn(
        `No API keys configured (API_KEYS, API_KEYS_FILE, pnpm keys): open dev mode, every request acts as tenant "${DEFAULT_TENANT}" without a limit, until the first key is created`,
      );
    } else if (apiKeys.length === 0 && (await store.count()) === 0) {
      app.log.warn(`No API key exists yet: every request is answered 401 until one does: ${HOW_TO_ADD_KEYS}`);
    }

    app.addHook('onRequest', async (request, reply) => {
      if (open) {
        request.tenant = DEFAULT_TENANT;
        return;
      }
      // A CORS preflight carries no credentials by design and answers with no data.
      if (request.method === 'OPTIONS' || isPublicRoute(request)) return;
      const key = presentedKey(request);
      if (key !== undefined && failures) {
        const wait = failures.retryAfter(request.ip);
        if (wait > 0) {
          reply.header('retry-after', String(wait));
          throw new TooManyFailedKeys(wait);
        }
      }
      const owner = key === undefined ? null : await resolver.resolve(key);
      if (owner === null) {
        if (key !== undefined) failures?.failed(request.ip);
        reply.header('www-authenticate', 'Bearer realm="punctual"');
        throw new Unauthorized();
      }
      request.tenant = owner.tenant;
      request.storeKeyHash = owner.storeKeyHash;
    });

    let checking = false;
    const recheck = async () => {
      if (checking) return;
      checking = true;
      try {
        if (open) {
          if (await store.required()) {
            open = false;
            app.log.warn('An API key was created: open dev mode has ended, every request now needs a key');
            app.feed.dropWhere((s) => s.keyHash === '', CLOSE_POLICY_VIOLATION, 'an API key is now required');
          }
          return;
        }
        await closeRevokedFeeds(app, store, resolver);
      } catch (err) {
        app.log.debug({ err }, 'API key recheck failed; trying again');
      } finally {
        checking = false;
      }
    };
    const timer = setInterval(() => void recheck(), KEY_RECHECK_MS);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  },
  { name: 'auth', dependencies: ['redis', 'messages', 'feed'] },
);

/** Closes the live-feed clients whose key-store key was revoked (or given to another tenant). */
async function closeRevokedFeeds(app: FastifyInstance, store: ApiKeyStore, resolver: ApiKeyResolver): Promise<void> {
  const hashes = [...app.feed.keyHashes()];
  if (hashes.length === 0) return;
  const entries = await store.findMany(hashes);
  const tenants = new Map(hashes.map((hash, i) => [hash, entries[i]?.tenant ?? null]));
  for (const [hash, tenant] of tenants) if (tenant === null) resolver.forget(hash);
  const dropped = app.feed.dropWhere(
    (s) => s.keyHash !== '' && tenants.has(s.keyHash) && tenants.get(s.keyHash) !== s.filter.tenant,
    CLOSE_POLICY_VIOLATION,
    'API key revoked',
  );
  if (dropped > 0) app.log.info({ dropped }, 'live-feed clients of revoked API keys closed');
}
