import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Channel } from '@punctual/shared';
import type { ChannelRegistry } from './channels/registry.js';
import type { ChannelProvider } from './channels/provider.js';
import type { AttemptOutcome, DeliveryObserver } from './processors/deliver-message.js';

/** This worker process's metrics, served on WORKER_PORT /metrics. */
export interface WorkerMetrics {
  registry: Registry;
  observer: DeliveryObserver;
  /** The same providers, each call timed into the provider latency histogram. */
  timed(channels: ChannelRegistry): ChannelRegistry;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const attempts = new Counter({
    name: 'punctual_worker_delivery_attempts_total',
    help: 'Delivery attempts this worker finished, by channel and outcome (delivered, failed, retried)',
    labelNames: ['channel', 'outcome'] as const,
    registers: [registry],
  });
  const providerSeconds = new Histogram({
    name: 'punctual_worker_provider_request_duration_seconds',
    help: 'Time a provider took to accept or refuse a message, by channel and result (ok, error)',
    labelNames: ['channel', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const time = (channel: Channel, provider: ChannelProvider): ChannelProvider => ({
    name: provider.name,
    async send(message) {
      const end = providerSeconds.startTimer({ channel });
      try {
        const result = await provider.send(message);
        end({ result: 'ok' });
        return result;
      } catch (err) {
        end({ result: 'error' });
        throw err;
      }
    },
  });

  return {
    registry,
    observer: { attempt: (channel: Channel, outcome: AttemptOutcome) => attempts.inc({ channel, outcome }) },
    timed: (channels) => new Map([...channels].map(([channel, provider]) => [channel, time(channel, provider)])),
  };
}
