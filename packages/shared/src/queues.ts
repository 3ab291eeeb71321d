import type { MessageRecord } from './message.js';

/** One delayed job per message; job id = message id. */
export interface DeliveryJobData {
  id: string;
}

/** Events a callbackUrl receives. */
export type CallbackEvent = 'messageDelivered' | 'messageFailed' | 'messageReceipt';

/** The record as it was right after the event: later changes do not alter what is sent. */
export interface CallbackJobData {
  event: CallbackEvent;
  record: MessageRecord;
  /** The message's tenant: picks the signing secret (CALLBACK_SECRETS) and the tenant's share of callback slots. */
  tenant: string;
}

/**
 * Every BullMQ queue, with its job name, and the payload its producer and consumer share. Renaming
 * a queue strands its jobs.
 */
export const QUEUES = {
  deliveries: { name: 'deliveries', job: 'deliver' },
  /** One job per event of a message that has a callbackUrl; job id = `<message id>-v<version>`. */
  callbacks: { name: 'callbacks', job: 'callback' },
} as const;

export interface QueuePayloads {
  deliveries: DeliveryJobData;
  callbacks: CallbackJobData;
}

export type QueueName = keyof typeof QUEUES & keyof QueuePayloads;
