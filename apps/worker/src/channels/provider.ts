import type { Channel, Template } from '@punctual/shared';

/** What a provider is given to send. */
export interface OutboundMessage {
  id: string;
  channel: Channel;
  recipient: string;
  message?: string;
  template?: Template;
}

export interface SendResult {
  providerMessageId: string;
}

/** A way to deliver one channel's messages: the simulator, Twilio, the WhatsApp Cloud API… */
export interface ChannelProvider {
  /** Shown in the start log: which provider serves the channel. */
  readonly name: string;
  send(message: OutboundMessage): Promise<SendResult>;
}

/**
 * A provider's refusal. Transient ones (network, 429, 5xx) are retried with backoff; permanent
 * ones fail the message at once. `message` starts with the provider's code.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly transient: boolean;
  /** The provider asked us to slow down (HTTP 429): wait at least this long. */
  readonly retryAfterMs?: number;

  constructor(message: string, options: { transient: boolean; retryAfterMs?: number }) {
    super(message);
    this.transient = options.transient;
    this.retryAfterMs = options.retryAfterMs;
  }
}
