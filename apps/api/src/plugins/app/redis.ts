import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { connectRedis, createRedis } from '@punctual/store';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
  }
}

/** The API's Redis connection: fails fast instead of queueing while Redis is away. */
export default fp(
  async (app, { url }: { url: string }) => {
    const redis = createRedis(url, 'api');
    redis.on('error', (err) => app.log.debug({ err: err.message }, 'redis connection error'));
    await connectRedis(redis);
    app.decorate('redis', redis);
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'redis' },
);
