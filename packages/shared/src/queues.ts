import type { MessageRecord } from './message.js';

/** BullMQ queue names shared by producer (API) and consumer (worker). Renaming one strands its jobs. */
export const QUEUE_NAMES = {
  /** One delayed job per message; job id = message id. */
  deliveries: 'deliveries',
  /** One job per final state of a message that has a callbackUrl; job id = `<message id>-v<version>`. */
  callbacks: 'callbacks',
  /** Carries no jobs: its BullMQ events stream is the live feed. */
  feed: 'feed',
} as const;

export interface DeliveryJobData {
  id: string;
}
export const DELIVERY_JOB_NAME = 'deliver';

/** Events a callbackUrl receives. */
export type CallbackEvent = 'messageDelivered' | 'messageFailed';

/** The record as it was right after the event: later changes do not alter what is sent. */
export interface CallbackJobData {
  event: CallbackEvent;
  record: MessageRecord;
  /** The message's tenant: picks the signing secret (CALLBACK_SECRETS) and the tenant's share of callback slots. */
  tenant: string;
}
export const CALLBACK_JOB_NAME = 'callback';
