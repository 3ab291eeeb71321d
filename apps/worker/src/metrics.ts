import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Channel } from '@punctual/shared';
import type { ChannelRegistry } from './channels/registry.js';
import type { ChannelProvider } from './channels/provider.js';
import type { AttemptOutcome, DeliveryObserver } from './processors/deliver-message.js';
import type { PacingObserver } from './pacing.js';

/** This worker process's metrics, served on WORKER_PORT /metrics. */
export interface WorkerMetrics {
  registry: Registry;
  observer: DeliveryObserver;
  pacing: PacingObserver;
  /** The same providers, each call timed into the provider latency histogram. */
  timed(channels: ChannelRegistry): ChannelRegistry;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const attempts = new Counter({
    name: 'punctual_worker_delivery_attempts_total',
    help: 'Delivery attempts this worker finished, by channel and outcome (delivered, failed, retried, throttled)',
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

  const pacingWait = new Histogram({
    name: 'punctual_pacing_wait_seconds',
    help: 'Time a due message waited for its slot of the channel rate (SMS_RATE_PER_SECOND, WHATSAPP_RATE_PER_SECOND) or a provider pause, by channel',
    labelNames: ['channel'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800],
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
    pacing: { waited: (channel: Channel, ms: number) => pacingWait.observe({ channel }, ms / 1000) },
    timed: (channels) => new Map([...channels].map(([channel, provider]) => [channel, time(channel, provider)])),
  };
}
