import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, DEFAULT_TENANT } from '@punctual/shared';
import { ApiKeyStore } from '@punctual/store';
import { ApiKeyResolver, presentedKey } from '../../api-keys.js';
import type { StaticApiKey } from '../../config.js';
import { Unauthorized } from '../../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Anyone may call the route: no API key, no tenant (probes, metrics, docs, console, webhooks). */
    public?: boolean;
  }
  interface FastifyInstance {
    /** False in open dev mode (no API keys anywhere): every request is tenant `default`. */
    authRequired: boolean;
  }
  interface FastifyRequest {
    /** The tenant the request's API key belongs to; '' on public routes. */
    tenant: string;
  }
}

export function isPublicRoute(request: FastifyRequest): boolean {
  return request.routeOptions.config.public === true;
}

/** Marks every route registered from here on in this context public (routes a third-party plugin adds). */
export function registerAsPublic(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, public: true } as typeof route.config;
  });
}

export interface AuthPluginOptions {
  apiKeys: StaticApiKey[];
  nodeEnv: string;
}

/**
 * Every request acts for the tenant of its API key, found in an onRequest hook so it also guards
 * WebSocket upgrades. A tenant is never chosen by anything else the client sends. With no key
 * configured anywhere (API_KEYS, API_KEYS_FILE, the CLI's store) a non-production API runs open.
 */
export default fp(
  async (app, { apiKeys, nodeEnv }: AuthPluginOptions) => {
    const store = new ApiKeyStore(app.redis, app.store.keys);
    const open = apiKeys.length === 0 && (await store.count()) === 0;
    if (open && nodeEnv === 'production') {
      throw new ConfigError(
        'No API keys configured: set API_KEYS or API_KEYS_FILE, or create one with `pnpm keys create <tenant>` (required when NODE_ENV=production)',
      );
    }
    app.decorate('authRequired', !open);
    app.decorateRequest('tenant', '');

    if (open) {
      app.log.warn(
        `No API keys configured (API_KEYS, API_KEYS_FILE, pnpm keys): open dev mode, every request acts as tenant "${DEFAULT_TENANT}" without a limit`,
      );
      app.addHook('onRequest', async (request) => {
        request.tenant = DEFAULT_TENANT;
      });
      return;
    }

    const resolver = new ApiKeyResolver(apiKeys, store);
    app.addHook('onRequest', async (request, reply) => {
      // A CORS preflight carries no credentials by design and answers with no data.
      if (request.method === 'OPTIONS' || isPublicRoute(request)) return;
      const key = presentedKey(request);
      const tenant = key === undefined ? null : await resolver.tenantOf(key);
      if (tenant === null) {
        reply.header('www-authenticate', 'Bearer realm="punctual"');
        throw new Unauthorized();
      }
      request.tenant = tenant;
    });
  },
  { name: 'auth', dependencies: ['redis', 'messages'] },
);
