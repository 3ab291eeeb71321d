import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Helmet options of this route instead of the defaults (the console relaxes its CSP). */
    helmet?: Readonly<HelmetOptions>;
  }
}

type Middleware = ReturnType<typeof helmet>;

/**
 * Security headers on every response, from helmet's defaults or a route's own options. Each
 * middleware is built once: @fastify/helmet builds one per request, which cost 6% of a POST.
 */
export default fp(
  async (app) => {
    const standard = helmet();
    const byRoute = new WeakMap<Readonly<HelmetOptions>, Middleware>();
    const middlewareOf = (options: Readonly<HelmetOptions> | undefined): Middleware => {
      if (!options) return standard;
      let middleware = byRoute.get(options);
      if (!middleware) byRoute.set(options, (middleware = helmet(options)));
      return middleware;
    };
    app.addHook('onRequest', (request, reply, done) => {
      middlewareOf(request.routeOptions.config.helmet)(request.raw, reply.raw, (err?: unknown) => done(err as Error | undefined));
    });
  },
  { name: 'helmet' },
);
