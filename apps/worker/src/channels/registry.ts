import type { Dispatcher } from 'undici';
import type { Channel } from '@punctual/shared';
import type { WorkerConfig } from '../config.js';
import type { ChannelProvider } from './provider.js';
import { ProviderHttp } from './provider-http.js';
import { createSimulator } from './simulator.js';
import { createTwilioProvider } from './twilio.js';
import { createWhatsAppCloudProvider } from './whatsapp-cloud.js';

export type ChannelRegistry = ReadonlyMap<Channel, ChannelProvider>;

type ProviderConfig = Pick<WorkerConfig, 'simulator' | 'twilio' | 'whatsappCloud' | 'providerTimeoutMs'>;

/**
 * The provider of every channel. SMS: Twilio when it has an SMS sender. WhatsApp: the Cloud API
 * when configured, else Twilio when it has a WhatsApp sender. Anything else: the simulator.
 */
export function createChannelRegistry(config: ProviderConfig, dispatcher: Dispatcher): ChannelRegistry {
  const http = new ProviderHttp(dispatcher, config.providerTimeoutMs);
  const simulator = createSimulator(config.simulator);
  const { twilio, whatsappCloud } = config;
  const sms = twilio && (twilio.from || twilio.messagingServiceSid) ? createTwilioProvider(twilio, 'sms', http) : simulator;
  const whatsapp = whatsappCloud
    ? createWhatsAppCloudProvider(whatsappCloud, http)
    : twilio?.whatsappFrom
      ? createTwilioProvider(twilio, 'whatsapp', http)
      : simulator;
  return new Map<Channel, ChannelProvider>([
    ['sms', sms],
    ['whatsapp', whatsapp],
  ]);
}
