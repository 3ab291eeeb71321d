import fp from 'fastify-plugin';
import type { RedisTarget } from '@punctual/store';
import { FeedRelay } from '../../feed/relay.js';

declare module 'fastify' {
  interface FastifyInstance {
    feed: FeedRelay;
  }
}

export interface FeedPluginOptions {
  redisTarget: RedisTarget;
  pingIntervalMs: number;
  maxBufferedBytes: number;
}

/** The live feed relay of this instance: reads the feed streams once, serves every /ws client. */
export default fp(
  async (app, opts: FeedPluginOptions) => {
    const relay = await FeedRelay.start({
      redisTarget: opts.redisTarget,
      redis: app.redis,
      keys: app.store.keys,
      log: app.log.child({ component: 'feed' }),
      pingIntervalMs: opts.pingIntervalMs,
      maxBufferedBytes: opts.maxBufferedBytes,
    });
    app.decorate('feed', relay);
    app.addHook('onClose', () => relay.close());
  },
  { name: 'feed', dependencies: ['redis', 'messages'] },
);
