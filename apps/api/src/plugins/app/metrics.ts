import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FleetStats, WorkerHeartbeats } from '@punctual/store';
import { registerFleetMetrics } from '../../fleet-metrics.js';

export interface ApiMetrics {
  /** This instance's metrics, then the fleet's (read from Redis), as Prometheus text. */
  scrape(): Promise<string>;
  contentType: string;
  /** Messages people sent to our senders (provider webhooks), by channel. */
  inboundMessages: Counter<'channel'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

export interface MetricsPluginOptions {
  /** Window in which a worker heartbeat counts as a live worker. */
  workerWindowMs: number;
}

/**
 * The API's Prometheus registry: this process (default metrics, request durations, WebSocket
 * clients, inbound messages) and the fleet-wide figures read from Redis at every scrape, the same on any instance.
 */
export default fp(
  async (app, { workerWindowMs }: MetricsPluginOptions) => {
    // this process's own figures, always there; the fleet's come from Redis, and a scrape while
    // Redis is away still answers with this instance's (and punctual_redis_up 0) rather than a 503
    const registry = new Registry();
    const fleet = new Registry();
    collectDefaultMetrics({ register: registry });
    registerFleetMetrics(fleet, {
      stats: new FleetStats(app.redis, app.store.keys),
      receipts: app.scheduler.receipts,
      suppressions: app.scheduler.suppressions,
      deliveries: app.deliveries,
      heartbeats: new WorkerHeartbeats(app.redis, app.store.keys),
      workerWindowMs,
    });

    const requestSeconds = new Histogram({
      name: 'punctual_http_request_duration_seconds',
      help: 'HTTP requests this API instance answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    app.addHook('onResponse', async (request, reply) => {
      requestSeconds.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode },
        reply.elapsedTime / 1000,
      );
    });

    new Gauge({
      name: 'punctual_ws_clients',
      help: 'WebSocket feed clients connected to this API instance',
      registers: [registry],
      collect() {
        this.set(app.feed.clientCount);
      },
    });
    const inboundMessages = new Counter({
      name: 'punctual_inbound_messages_total',
      help: 'Messages people sent to our senders, received by this API instance, by channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    });
    const redisUp = new Gauge({
      name: 'punctual_redis_up',
      help: "1 when this scrape read the fleet-wide figures from Redis, 0 when Redis did not answer (they are left out)",
      registers: [registry],
    });
    const scrape = async () => {
      let fleetText = '';
      try {
        fleetText = await fleet.metrics();
        redisUp.set(1);
      } catch (err) {
        app.log.warn({ err: (err as Error).message }, 'fleet metrics left out of the scrape: Redis did not answer');
        redisUp.set(0);
      }
      return (await registry.metrics()) + fleetText;
    };
    app.decorate('metrics', { scrape, contentType: registry.contentType, inboundMessages });
  },
  { name: 'metrics', dependencies: ['messages', 'feed'] },
);
