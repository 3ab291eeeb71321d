import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { ConsoleNotBuilt } from '../errors.js';
import { registerAsPublic } from '../plugins/app/auth.js';

/** apps/console/dist, found from this file in src/routes (tests) or dist/routes (built). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

export interface ConsoleRouteOptions {
  /** The console's built files; default CONSOLE_DIST. */
  root?: string;
}

/** The page's own bundle plus the feed and API on the same origin: nothing else may load or be called. */
const CONSOLE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'"],
  },
};
/** One options object for every console route: its helmet middleware is built once. */
const CONSOLE_HELMET = { contentSecurityPolicy: CONSOLE_CSP };

/**
 * The live console at /console: static files built by `pnpm build` (apps/console). Public, as
 * the page asks for an API key itself. Without a build every console URL answers 503.
 */
const consoleRoutes: FastifyPluginAsync<ConsoleRouteOptions> = async (app, { root = CONSOLE_DIST }) => {
  registerAsPublic(app);
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, helmet: CONSOLE_HELMET } as typeof route.config;
  });

  if (!existsSync(join(root, 'index.html'))) {
    const notBuilt = async () => {
      throw new ConsoleNotBuilt();
    };
    app.get('/console', { schema: { hide: true } }, notBuilt);
    app.get('/console/*', { schema: { hide: true } }, notBuilt);
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    decorateReply: false,
    // hashed asset names never change; index.html is always revalidated
    setHeaders: (reply, path) => {
      reply.header('cache-control', path.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
    },
  });
  // relative asset URLs of the page resolve under /console/ only
  app.get('/console', { schema: { hide: true } }, (_request, reply) => reply.redirect('/console/', 301));
};

export default consoleRoutes;
