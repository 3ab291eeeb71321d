import fp from 'fastify-plugin';
import { DeliveryQueues, Keyspace, MessageStore, Scheduler, type Suppressions } from '@punctual/store';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every change of a message goes through it. */
    scheduler: Scheduler;
    /** The records, for reads (one message, list pages). */
    store: MessageStore;
    deliveries: DeliveryQueues;
    /** The suppression lists (opt-outs): the deployment's and each tenant's. */
    suppressions: Suppressions;
  }
}

export interface MessagesPluginOptions {
  queuePrefix: string;
  partitions: number;
  eventsMaxLen: number;
  retentionMs: number;
  maxScheduledPerTenant: number;
}

/** The scheduler (records, delivery and callback queues, quota) on the API's Redis connection. */
export default fp(
  async (app, opts: MessagesPluginOptions) => {
    const scheduler = await Scheduler.create(app.redis, {
      keyspace: new Keyspace({ prefix: opts.queuePrefix, partitions: opts.partitions }),
      eventsMaxLen: opts.eventsMaxLen,
      retentionMs: opts.retentionMs,
      maxScheduledPerTenant: opts.maxScheduledPerTenant,
    });
    app.decorate('scheduler', scheduler);
    app.decorate('store', scheduler.store);
    app.decorate('deliveries', scheduler.deliveries);
    app.decorate('suppressions', scheduler.suppressions);
    app.addHook('onClose', () => scheduler.close());
  },
  { name: 'messages', dependencies: ['redis'] },
);
