import fp from 'fastify-plugin';
import { DeliveryQueues, Keyspace, MessageStore } from '@punctual/store';

declare module 'fastify' {
  interface FastifyInstance {
    store: MessageStore;
    deliveries: DeliveryQueues;
  }
}

export interface MessagesPluginOptions {
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  retentionMs: number;
}

/** The message store and the delivery queues, on the API's Redis connection. */
export default fp(
  async (app, opts: MessagesPluginOptions) => {
    const keyspace = new Keyspace({ prefix: opts.queuePrefix, partitions: opts.partitions });
    app.decorate('store', new MessageStore(app.redis, { keyspace, eventsMaxLen: opts.eventsMaxLen, retentionMs: opts.retentionMs }));
    const deliveries = new DeliveryQueues(keyspace, app.redis);
    app.decorate('deliveries', deliveries);
    app.addHook('onClose', () => deliveries.close());
  },
  { name: 'messages', dependencies: ['redis'] },
);
