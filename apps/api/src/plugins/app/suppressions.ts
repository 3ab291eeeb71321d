import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { CHANNELS, SUPPRESSION_SOURCES } from '@punctual/shared';
import type { Suppressions } from '@punctual/store';

declare module 'fastify' {
  interface FastifyInstance {
    /** The suppression lists (opt-outs): the deployment's and each tenant's. */
    suppressions: Suppressions;
  }
}

/**
 * The scheduler's suppression lists on the instance, for the /suppressions routes and the inbound
 * webhooks (`applyInboundKeyword`), and `punctual_optouts_total`, read from Redis at every scrape
 * like the other fleet-wide counters.
 */
export default fp(
  async (app) => {
    const { suppressions } = app.scheduler;
    app.decorate('suppressions', suppressions);
    new Counter({
      name: 'punctual_optouts_total',
      help: "Recipients suppressed, by channel and source: inbound (a STOP reply), provider (Twilio 21610), api (a tenant's own list), fleet-wide",
      labelNames: ['channel', 'source'] as const,
      registers: [app.metrics.registry],
      async collect() {
        const counts = await suppressions.optOutCounts();
        // One synchronous block after the read: a concurrent scrape never sees half of it.
        this.reset();
        for (const channel of CHANNELS) for (const source of SUPPRESSION_SOURCES) this.inc({ channel, source }, 0);
        for (const [key, value] of counts) {
          const [channel, source] = key.split(':');
          this.inc({ channel, source }, value);
        }
      },
    });
  },
  { name: 'suppressions', dependencies: ['messages', 'metrics'] },
);
