import type { Dispatcher } from 'undici';
import { CHANNELS, ConfigError, type Channel } from '@punctual/shared';
import type { WorkerConfig } from '../config.js';
import type { ChannelProvider } from './provider.js';
import { ProviderHttp } from './provider-http.js';
import { createSimulator } from './simulator.js';
import { createTwilioProvider } from './twilio.js';
import { createWhatsAppCloudProvider } from './whatsapp-cloud.js';

export type ChannelRegistry = ReadonlyMap<Channel, ChannelProvider>;

type ProviderConfig = Pick<WorkerConfig, 'nodeEnv' | 'simulator' | 'twilio' | 'whatsappCloud' | 'providerTimeoutMs'>;

type ProviderKind = 'twilio' | 'whatsapp-cloud' | 'simulator';

/**
 * Which provider serves each channel. SMS: Twilio when it has an SMS sender. WhatsApp: the Cloud
 * API when configured, else Twilio when it has a WhatsApp sender. Anything else: the simulator.
 */
function providerKinds({ twilio, whatsappCloud }: ProviderConfig): Record<Channel, ProviderKind> {
  return {
    sms: twilio && (twilio.from || twilio.messagingServiceSid) ? 'twilio' : 'simulator',
    whatsapp: whatsappCloud ? 'whatsapp-cloud' : twilio?.whatsappFrom ? 'twilio' : 'simulator',
  };
}

/** Channels no provider is configured for: the simulator serves them. */
export function simulatedChannels(config: ProviderConfig): Channel[] {
  const kinds = providerKinds(config);
  return CHANNELS.filter((channel) => kinds[channel] === 'simulator');
}

/** What configures a real provider of each channel, for the refusal below. */
const PROVIDER_VARIABLES: Record<Channel, string> = {
  sms: 'TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID',
  whatsapp: 'WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID, or the TWILIO_* account with TWILIO_WHATSAPP_FROM',
};

/**
 * A production worker never fakes deliveries by accident: a channel left to the simulator is a
 * configuration error under NODE_ENV=production unless SIMULATOR=true says it is meant.
 */
export function assertProvidersConfigured(config: ProviderConfig): void {
  if (config.nodeEnv !== 'production' || config.simulator.allowInProduction) return;
  const simulated = simulatedChannels(config);
  if (simulated.length === 0) return;
  const missing = simulated.map((channel) => `channel ${channel} (set ${PROVIDER_VARIABLES[channel]})`).join(', ');
  throw new ConfigError(
    `Invalid configuration: NODE_ENV=production and no provider is configured for ${missing}; ` +
      `configure one or set SIMULATOR=true to let the simulator serve ${simulated.length === 1 ? 'it' : 'them'}`,
  );
}

/** The provider of every channel; refuses the simulator in production (see assertProvidersConfigured). */
export function createChannelRegistry(config: ProviderConfig, dispatcher: Dispatcher): ChannelRegistry {
  assertProvidersConfigured(config);
  const http = new ProviderHttp(dispatcher, config.providerTimeoutMs);
  const simulator = createSimulator(config.simulator);
  const kinds = providerKinds(config);
  const providerOf = (channel: Channel): ChannelProvider => {
    const kind = kinds[channel];
    if (kind === 'twilio') return createTwilioProvider(config.twilio!, channel, http);
    if (kind === 'whatsapp-cloud') return createWhatsAppCloudProvider(config.whatsappCloud!, http);
    return simulator;
  };
  return new Map(CHANNELS.map((channel) => [channel, providerOf(channel)]));
}
