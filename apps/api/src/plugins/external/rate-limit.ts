import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import { RateLimited } from '../../errors.js';
import { isPublicRoute } from '../app/auth.js';

export interface RateLimitOptions {
  max: number;
  windowMs: number;
}

/**
 * Requests per tenant per window, counted in Redis so every API instance shares the count. Runs
 * after authentication (route-level onRequest hooks follow the app's), keyed by tenant, so one
 * tenant at its limit never slows another. Should Redis fail, requests pass rather than fail.
 */
export default fp(
  async (app, { max, windowMs }: RateLimitOptions) => {
    await app.register(rateLimit, {
      redis: app.redis,
      nameSpace: app.store.keys.rateLimit(),
      max,
      timeWindow: windowMs,
      skipOnError: true,
      keyGenerator: (request) => request.tenant,
      // open dev mode has no limit (it ends when the first key is created, and the limit applies then)
      allowList: (request) => !app.authRequired || isPublicRoute(request) || request.tenant === '',
      errorResponseBuilder: (_request, context) => new RateLimited(context.max, windowMs, context.after),
    });
  },
  { name: 'tenant-rate-limit', dependencies: ['redis', 'messages', 'auth'] },
);
