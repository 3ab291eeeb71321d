import type { FastifyInstance } from 'fastify';
import type { Channel } from '@punctual/shared';
import { applyInboundKeyword } from '@punctual/store';

/** A message a person sent to one of our senders. */
export interface InboundMessage {
  channel: Channel;
  /** The sender's number as the provider gives it (`+1…` from Twilio, digits from Meta). */
  from: string;
  text: string;
}

/**
 * Every inbound message of every provider webhook comes through here (Twilio's incoming-message
 * webhook, Meta's `messages[]`): an opt-out or opt-in keyword changes the sender's suppression on
 * that channel for every tenant. It is counted and logged, never with its number or text. A Redis
 * error throws, so the webhook answers 5xx and the provider sends it again.
 */
export async function handleInboundMessage(app: FastifyInstance, message: InboundMessage): Promise<void> {
  app.metrics.inboundMessages.inc({ channel: message.channel });
  const { keyword, changed } = await applyInboundKeyword(app.suppressions, message, Date.now());
  app.log.info({ channel: message.channel, keyword, changed }, 'inbound message');
}
