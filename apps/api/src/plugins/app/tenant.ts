import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

/** Every request acts for one tenant; without API keys that is `default`. */
export default fp(
  async (app) => {
    app.decorateRequest('tenant', 'default');
  },
  { name: 'tenant' },
);
