import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';

/** Security headers on every response (HTML routes may relax the CSP per route). */
export default fp(
  async (app) => {
    await app.register(helmet, { global: true });
  },
  { name: 'helmet' },
);
