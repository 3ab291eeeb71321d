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
  /** The provider's message can be looked up later for its receipt (Twilio's Message resource). */
  receiptLookup?: boolean;
}

/** A way to deliver one channel's messages: the simulator, Twilio, the WhatsApp Cloud API… */
export interface ChannelProvider {
  /** Shown in the start log: which provider serves the channel. */
  readonly name: string;
  send(message: OutboundMessage): Promise<SendResult>;
}

/**
 * A provider's refusal. Transient ones (network, timeout, 5xx) are retried with backoff; permanent
 * ones fail the message at once; rate-limited ones (HTTP 429) pause their channel, and
 * recipient-limited ones (Meta 131056) that recipient's messages, without spending an attempt.
 * `message` starts with the provider's code.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly transient: boolean;
  /** The provider's throughput limit was hit: pause the channel instead of counting an attempt. */
  readonly rateLimited: boolean;
  /** Too many messages to this one recipient: pause its messages instead of counting an attempt. */
  readonly recipientRateLimited: boolean;
  /** The provider asked us to wait at least this long (Retry-After). */
  readonly retryAfterMs?: number;
  /** The provider refuses the recipient as unsubscribed (Twilio 21610): it opted out of the channel. */
  readonly recipientOptedOut: boolean;

  constructor(message: string, options: { transient: boolean; rateLimited?: boolean; recipientRateLimited?: boolean; retryAfterMs?: number; recipientOptedOut?: boolean }) {
    super(message);
    this.rateLimited = options.rateLimited === true;
    this.recipientRateLimited = options.recipientRateLimited === true && !this.rateLimited;
    this.transient = options.transient || this.rateLimited || this.recipientRateLimited;
    this.retryAfterMs = options.retryAfterMs;
    this.recipientOptedOut = options.recipientOptedOut === true;
  }
}
