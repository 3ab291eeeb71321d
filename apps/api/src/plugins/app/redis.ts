import fp from 'fastify-plugin';
import { connectRedis, createRedisConnection, type RedisClient, type RedisTarget } from '@punctual/store';

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient;
  }
}

/** The API's Redis connection: fails fast instead of queueing while Redis is away. */
export default fp(
  async (app, { target }: { target: RedisTarget }) => {
    const redis = createRedisConnection(target, 'api');
    redis.on('error', (err) => app.log.debug({ err: err.message }, 'redis connection error'));
    await connectRedis(redis);
    app.decorate<RedisClient>('redis', redis);
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'redis' },
);
