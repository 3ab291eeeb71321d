import fp from 'fastify-plugin';
import { FeedRelay } from '../../feed/relay.js';

declare module 'fastify' {
  interface FastifyInstance {
    feed: FeedRelay;
  }
}

export interface FeedPluginOptions {
  redisUrl: string;
  pingIntervalMs: number;
  maxBufferedBytes: number;
}

/** The live feed relay of this instance: reads the feed streams once, serves every /ws client. */
export default fp(
  async (app, opts: FeedPluginOptions) => {
    const relay = await FeedRelay.start({
      redisUrl: opts.redisUrl,
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
