import fp from 'fastify-plugin';
import cors from '@fastify/cors';

/** Cross-origin access only for CORS_ORIGINS (none by default; `*` = any origin). */
export default fp(
  async (app, { origins }: { origins: string[] }) => {
    await app.register(cors, {
      origin: origins.includes('*') ? true : origins.length > 0 ? origins : false,
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['Authorization', 'X-API-Key', 'Content-Type', 'Idempotency-Key'],
      exposedHeaders: ['Retry-After', 'Idempotent-Replayed', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'],
      maxAge: 600,
    });
  },
  { name: 'cors' },
);
