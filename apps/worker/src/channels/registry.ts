import { CHANNELS, type Channel } from '@punctual/shared';
import type { WorkerConfig } from '../config.js';
import type { ChannelProvider } from './provider.js';
import { createSimulator } from './simulator.js';

export type ChannelRegistry = ReadonlyMap<Channel, ChannelProvider>;

/** The provider of every channel: a configured real one, else the simulator. */
export function createChannelRegistry(config: Pick<WorkerConfig, 'simulator'>): ChannelRegistry {
  const simulator = createSimulator(config.simulator);
  return new Map(CHANNELS.map((channel) => [channel, simulator]));
}
