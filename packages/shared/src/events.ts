import type { MessageRecord } from './message.js';

export const MESSAGE_EVENTS = [
  'messageScheduled',
  'messageUpdated',
  'messageDeleted',
  'messageSending',
  'messageDelivered',
  'messageFailed',
  'messageRetrying',
] as const;
export type MessageEventName = (typeof MESSAGE_EVENTS)[number];

/** A frame of the live feed: the record as it was right after the event. */
export interface MessageEvent {
  event: MessageEventName;
  id: string;
  data: MessageRecord;
}
