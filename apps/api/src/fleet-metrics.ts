import { CHANNELS, RECEIPT_STATUSES, SUPPRESSION_SOURCES } from '@punctual/shared';
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import type { DeliveryQueues, FleetStats, MsHistogram, ReceiptStore, Suppressions, WorkerHeartbeats } from '@punctual/store';

const OUTCOMES = ['scheduled', 'delivered', 'failed', 'canceled', 'retried', 'throttled'] as const;

export interface FleetSources {
  stats: FleetStats;
  receipts: ReceiptStore;
  suppressions: Suppressions;
  deliveries: DeliveryQueues;
  heartbeats: WorkerHeartbeats;
  workerWindowMs: number;
}

/**
 * Figures of the whole fleet, read from Redis when scraped: the counters and histograms are the
 * ones the transition scripts keep, so any API instance reports the same exact totals, across
 * restarts.
 */
export function registerFleetMetrics(registry: Registry, sources: FleetSources) {
  const { stats, receipts, suppressions, deliveries, heartbeats, workerWindowMs } = sources;
  redisCounter(registry, {
    name: 'punctual_messages_total',
    help: 'Messages scheduled, delivered, failed, canceled, retried (transient failures) and throttled (provider 429), by channel, fleet-wide',
    labels: [['outcome', OUTCOMES], ['channel', CHANNELS]],
    read: () => stats.outcomeCounts(),
  });
  redisCounter(registry, {
    name: 'punctual_receipts_total',
    help: 'Delivery receipts that changed a message (sent, delivered, read, undelivered, failed), by channel, fleet-wide',
    labels: [['status', RECEIPT_STATUSES], ['channel', CHANNELS]],
    read: () => receipts.counts(),
  });
  redisCounter(registry, {
    name: 'punctual_optouts_total',
    help: "Recipients suppressed, by channel and source: inbound (a STOP reply), provider (Twilio 21610), api (a tenant's own list), fleet-wide",
    labels: [['channel', CHANNELS], ['source', SUPPRESSION_SOURCES]],
    read: () => suppressions.optOutCounts(),
  });
  redisHistogram(registry, {
    name: 'punctual_delivery_lateness_seconds',
    help: 'How late deliveries reached their provider after the message was due, fleet-wide',
    read: async () => [{ labels: {}, histogram: await stats.latenessHistogram() }],
  });
  redisHistogram(registry, {
    name: 'punctual_receipt_latency_seconds',
    help: "Time from the provider's acceptance of a message to each receipt, by receipt status, fleet-wide",
    read: async () => [...(await receipts.latency())].map(([status, histogram]) => ({ labels: { status }, histogram })),
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
}

/**
 * A counter of two labels whose totals Redis keeps as `<first>:<second>` → count; every
 * combination of the known values is reported, 0 when Redis has none.
 */
function redisCounter(
  registry: Registry,
  { name, help, labels, read }: { name: string; help: string; labels: [[string, readonly string[]], [string, readonly string[]]]; read: () => Promise<Map<string, number>> },
) {
  const [[first, firstValues], [second, secondValues]] = labels;
  new Counter({
    name,
    help,
    labelNames: [first, second],
    registers: [registry],
    async collect() {
      const counts = await read();
      // One synchronous block after the read: a concurrent scrape never sees half of it.
      this.reset();
      for (const a of firstValues) for (const b of secondValues) this.inc({ [first]: a, [second]: b }, 0);
      for (const [key, value] of counts) {
        const [a, b] = key.split(':');
        this.inc({ [first]: a!, [second]: b! }, value);
      }
    },
  });
}

/** A histogram (seconds) whose buckets Redis keeps in ms: prom-client cannot set a histogram's buckets from outside, the registry only needs get(). */
function redisHistogram(
  registry: Registry,
  { name, help, read }: { name: string; help: string; read: () => Promise<{ labels: Record<string, string>; histogram: MsHistogram }[]> },
) {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values = [];
      for (const { labels, histogram } of await read()) {
        let cumulative = 0;
        for (const [le, count] of histogram.buckets) {
          cumulative += count;
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: le === Infinity ? '+Inf' : le / 1000 }, value: cumulative });
        }
        values.push({ metricName: `${name}_sum`, labels, value: histogram.sumMs / 1000 });
        values.push({ metricName: `${name}_count`, labels, value: histogram.count });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}
