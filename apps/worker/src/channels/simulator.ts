import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError, type ChannelProvider, type SendResult } from './provider.js';

export interface SimulatorOptions {
  latencyMs: number;
  /** Share of sends (0–1) that fail permanently. */
  failureRate: number;
}

/** The built-in provider of a channel with no real one configured: waits, then accepts. */
export function createSimulator({ latencyMs, failureRate }: SimulatorOptions): ChannelProvider {
  // ids unique to this process and run, without asking the OS for randomness per message
  const prefix = `SIM${randomBytes(6).toString('hex')}`;
  let sent = 0;
  return {
    name: `simulator (latency ${latencyMs} ms, failure rate ${failureRate})`,
    async send(): Promise<SendResult> {
      if (latencyMs > 0) await sleep(latencyMs);
      if (failureRate > 0 && Math.random() < failureRate) {
        throw new ProviderError('SIMULATED_FAILURE: the simulator refused this message', { transient: false });
      }
      return { providerMessageId: `${prefix}${(sent++).toString(16).padStart(8, '0')}` };
    },
  };
}
