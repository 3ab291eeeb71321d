import { Type, type Static } from '@sinclair/typebox';
import { Channel, MessageStatus, type MessageRecord } from './message.js';

export const MESSAGE_EVENTS = [
  'messageScheduled',
  'messageUpdated',
  'messageDeleted',
  'messageSending',
  'messageDelivered',
  'messageFailed',
  'messageRetrying',
  'messageReceipt',
] as const;
export type MessageEventName = (typeof MESSAGE_EVENTS)[number];

/** A frame of the live feed: the record as it was right after the event. */
export interface MessageEvent {
  event: MessageEventName;
  id: string;
  data: MessageRecord;
}

/** Sent once, before anything else, when `since` is older than what the feed still retains. */
export interface ResyncFrame {
  event: 'resync';
}

/**
 * An event id: the Redis stream entry id of its partition's feed (`<ms>-<seq>`). With several
 * partitions a client's resume point is one such id per partition, joined by `_`.
 */
export const FEED_CURSOR_PATTERN = '^[0-9]{1,20}-[0-9]{1,20}(_[0-9]{1,20}-[0-9]{1,20})*$';

export const FeedQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        pattern: FEED_CURSOR_PATTERN,
        maxLength: 64 * 1024,
        description: 'The id of the last event received: replay everything after it, then continue live',
      }),
    ),
    channel: Type.Optional(Channel),
    status: Type.Optional(MessageStatus),
    access_token: Type.Optional(Type.String({ maxLength: 512, description: 'API key, for browsers that cannot set headers on a WebSocket' })),
  },
  { additionalProperties: false },
);
export type FeedQuery = Static<typeof FeedQuery>;
