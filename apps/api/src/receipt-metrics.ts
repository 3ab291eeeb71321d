import { CHANNELS, RECEIPT_STATUSES } from '@punctual/shared';
import { Counter, type Metric, type Registry } from 'prom-client';
import type { ReceiptStore } from '@punctual/store';

const LATENCY = 'punctual_receipt_latency_seconds';

/**
 * Delivery receipts fleet-wide, read from the counters and histogram the receipt script keeps in
 * Redis: any API instance reports the same totals.
 */
export function registerReceiptMetrics(registry: Registry, receipts: ReceiptStore): void {
  new Counter({
    name: 'punctual_receipts_total',
    help: 'Delivery receipts that changed a message (sent, delivered, read, undelivered, failed), by channel, fleet-wide',
    labelNames: ['status', 'channel'] as const,
    registers: [registry],
    async collect() {
      const counts = await receipts.counts();
      this.reset();
      for (const status of RECEIPT_STATUSES) for (const channel of CHANNELS) this.inc({ status, channel }, 0);
      for (const [key, value] of counts) {
        const [status, channel] = key.split(':');
        this.inc({ status, channel }, value);
      }
    },
  });

  // prom-client cannot set a histogram's buckets from outside; the registry only needs get().
  const latency = {
    name: LATENCY,
    help: "Time from the provider's acceptance of a message to each receipt, by receipt status, fleet-wide",
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values = [];
      for (const [status, histogram] of await receipts.latency()) {
        let cumulative = 0;
        for (const [le, count] of histogram.buckets) {
          cumulative += count;
          values.push({ metricName: `${LATENCY}_bucket`, labels: { status, le: le === Infinity ? '+Inf' : le / 1000 }, value: cumulative });
        }
        values.push({ metricName: `${LATENCY}_sum`, labels: { status }, value: histogram.sumMs / 1000 });
        values.push({ metricName: `${LATENCY}_count`, labels: { status }, value: histogram.count });
      }
      return { name: LATENCY, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
  };
  registry.registerMetric(latency as unknown as Metric);
}
