import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import type { Channel } from '@punctual/shared';
import { applyInboundKeyword } from '@punctual/store';

/** A message a person sent to one of our senders. */
export interface InboundMessage {
  channel: Channel;
  /** The sender's number as the provider gives it (`+1…` from Twilio, digits from Meta). */
  from: string;
  text: string;
}

const INBOUND_TOTAL = 'punctual_inbound_messages_total';

/**
 * Every inbound message of every provider webhook comes through here (Twilio's incoming-message
 * webhook, Meta's `messages[]`): an opt-out or opt-in keyword changes the sender's suppression on
 * that channel for every tenant. It is counted and logged, never with its number or text. A Redis
 * error throws, so the webhook answers 5xx and the provider sends it again.
 */
export async function handleInboundMessage(app: FastifyInstance, message: InboundMessage): Promise<void> {
  inboundCounter(app).inc({ channel: message.channel });
  const { keyword, changed } = await applyInboundKeyword(app.suppressions, message, Date.now());
  app.log.info({ channel: message.channel, keyword, changed }, 'inbound message');
}

function inboundCounter(app: FastifyInstance): Counter<'channel'> {
  const registry = app.metrics.registry;
  const existing = registry.getSingleMetric(INBOUND_TOTAL) as Counter<'channel'> | undefined;
  return existing ?? new Counter({ name: INBOUND_TOTAL, help: 'Messages people sent to our senders, received by this API instance, by channel', labelNames: ['channel'], registers: [registry] });
}
