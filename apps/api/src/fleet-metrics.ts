import { CHANNELS } from '@punctual/shared';
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import type { DeliveryQueues, FleetStats, WorkerHeartbeats } from '@punctual/store';

const OUTCOMES = ['scheduled', 'delivered', 'failed', 'canceled', 'retried', 'throttled'] as const;
const LATENESS = 'punctual_delivery_lateness_seconds';

export interface FleetSources {
  stats: FleetStats;
  deliveries: DeliveryQueues;
  heartbeats: WorkerHeartbeats;
  workerWindowMs: number;
}

/**
 * Figures of the whole fleet, read from Redis when scraped: the counters and the lateness
 * histogram are the ones every transition script increments, so any API instance reports the
 * same exact totals, across restarts.
 */
export function registerFleetMetrics(registry: Registry, { stats, deliveries, heartbeats, workerWindowMs }: FleetSources) {
  new Counter({
    name: 'punctual_messages_total',
    help: 'Messages scheduled, delivered, failed, canceled, retried (transient failures) and throttled (provider 429), by channel, fleet-wide',
    labelNames: ['outcome', 'channel'] as const,
    registers: [registry],
    async collect() {
      const counts = await stats.outcomeCounts();
      // One synchronous block after the read: a concurrent scrape never sees half of it.
      this.reset();
      for (const outcome of OUTCOMES) for (const channel of CHANNELS) this.inc({ outcome, channel }, 0);
      for (const [key, value] of counts) {
        const [outcome, channel] = key.split(':');
        this.inc({ outcome, channel }, value);
      }
    },
  });

  new Gauge({
    name: 'punctual_queue_jobs',
    help: 'Delivery jobs by state (delayed, waiting, active, failed), all partitions',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      for (const [state, value] of Object.entries(await deliveries.counts())) this.set({ state }, value);
    },
  });

  new Gauge({
    name: 'punctual_workers',
    help: 'Worker processes whose heartbeat was seen within the readiness window',
    registers: [registry],
    async collect() {
      this.set(await heartbeats.countSince(Date.now() - workerWindowMs));
    },
  });

  // prom-client cannot set a histogram's buckets from outside; the registry only needs get().
  const lateness = {
    name: LATENESS,
    help: 'How late deliveries reached their provider after the message was due, fleet-wide',
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const histogram = await stats.latenessHistogram();
      const values = [];
      let cumulative = 0;
      for (const [le, count] of histogram.buckets) {
        cumulative += count;
        values.push({ metricName: `${LATENESS}_bucket`, labels: { le: le === Infinity ? '+Inf' : le / 1000 }, value: cumulative });
      }
      values.push({ metricName: `${LATENESS}_sum`, labels: {}, value: histogram.sumMs / 1000 });
      values.push({ metricName: `${LATENESS}_count`, labels: {}, value: histogram.count });
      return { name: LATENESS, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
  };
  registry.registerMetric(lateness as unknown as Metric);
}
