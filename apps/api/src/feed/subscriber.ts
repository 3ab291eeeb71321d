import type { WebSocket } from 'ws';
import type { Channel, MessageStatus } from '@punctual/shared';
import { formatFeedCursor, streamIdOrder } from '@punctual/store';

/** An event read from a partition's stream, serialized once for every client it goes to. */
export interface RelayedEvent {
  id: string;
  /** `streamIdOrder(id)`: compared as a string. */
  order: string;
  tenant: string;
  channel: Channel;
  status: MessageStatus;
  /** The frame is `head + <event id> + tail`: the id depends on the client when there are several partitions. */
  head: string;
  tail: string;
  /** Frames already encoded, by event id: the clients that get the same id share one buffer. */
  frames: Map<string, Buffer>;
}

/** Frames are JSON: sent as text (one options object for every send, not one per client per event). */
const AS_TEXT = { binary: false } as const;

/** The frame for one event id, encoded once for every client that gets that id. */
function frameOf(event: RelayedEvent, eventId: string): Buffer {
  let frame = event.frames.get(eventId);
  if (!frame) {
    frame = Buffer.from(event.head + eventId + event.tail);
    event.frames.set(eventId, frame);
  }
  return frame;
}

export interface FeedFilter {
  tenant: string;
  channel?: Channel;
  status?: MessageStatus;
}

export const CLOSE_TOO_SLOW = 1013;
/** The credential the client connected with no longer holds (revoked key, open dev mode ended). */
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_FEED_UNAVAILABLE = 1011;

/** Live events kept while a client catches up; past it they are re-read from Redis instead. */
const CATCH_UP_BACKLOG_LIMIT = 1000;

/**
 * One WebSocket client of the feed: where it is in every partition's stream, what it wants to
 * see, and how much it may have unread before it is dropped.
 */
export class FeedSubscriber {
  /** Answered the last ping. */
  alive = true;
  /** Live events held back while catching up; null once live. */
  private backlog: { partition: number; event: RelayedEvent }[] | null;
  /** Some live events were let go during this catch-up pass: another pass must re-read them. */
  private backlogOverflowed = false;
  private lastWrite: Promise<void> = Promise.resolve();
  private readonly positions: string[];
  private readonly orders: string[];
  readonly filter: FeedFilter;
  /** sha256 of the key-store key the client authenticated with; '' for any other credential. */
  readonly keyHash: string;
  private readonly maxBufferedBytes: number;
  private readonly onDrop: (subscriber: FeedSubscriber) => void;

  constructor(
    readonly socket: WebSocket,
    options: {
      filter: FeedFilter;
      keyHash: string;
      /** Position in each partition's stream to send after. */
      start: readonly string[];
      /** Whether the client first catches up from Redis (a resume), holding live events meanwhile. */
      catchingUp: boolean;
      maxBufferedBytes: number;
      onDrop: (subscriber: FeedSubscriber) => void;
    },
  ) {
    this.filter = options.filter;
    this.keyHash = options.keyHash;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.onDrop = options.onDrop;
    this.positions = [...options.start];
    this.orders = options.start.map(streamIdOrder);
    this.backlog = options.catchingUp ? [] : null;
    socket.on('pong', () => {
      this.alive = true;
    });
  }

  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** Last event id this client has been given (or passed over) in a partition. */
  position(partition: number): string {
    return this.positions[partition]!;
  }

  /** Starts over from the beginning of a partition's stream (after a resync). */
  rewind(partition: number): void {
    this.positions[partition] = '0-0';
    this.orders[partition] = streamIdOrder('0-0');
  }

  /** An event as the relay reads it live. */
  offer(partition: number, event: RelayedEvent): void {
    if (!this.backlog) return this.deliver(partition, event);
    if (this.backlog.length < CATCH_UP_BACKLOG_LIMIT) {
      this.backlog.push({ partition, event });
    } else {
      this.backlog = [];
      this.backlogOverflowed = true;
    }
  }

  /** Sends an event unless this client is already past it; a filtered-out one only moves its position. */
  deliver(partition: number, event: RelayedEvent): void {
    if (event.order <= this.orders[partition]!) return;
    this.orders[partition] = event.order;
    this.positions[partition] = event.id;
    if (!this.wants(event)) return;
    this.send(frameOf(event, this.positions.length === 1 ? event.id : formatFeedCursor(this.positions)));
  }

  /** Moves past an event this client may not see, as `deliver` does with one it filters out. */
  passOver(partition: number, id: string): void {
    const order = streamIdOrder(id);
    if (order <= this.orders[partition]!) return;
    this.orders[partition] = order;
    this.positions[partition] = id;
  }

  sendResync(): void {
    this.send(Buffer.from('{"event":"resync"}'));
  }

  /** Begins a pass over the streams; live events let go from here on need another pass. */
  beginCatchUpPass(): void {
    this.backlogOverflowed = false;
  }

  get backlogOverflowedThisPass(): boolean {
    return this.backlogOverflowed;
  }

  /** Caught up with the streams: the live events held meanwhile follow, minus those already sent. */
  goLive(): void {
    const backlog = this.backlog ?? [];
    this.backlog = null;
    for (const { partition, event } of backlog) this.deliver(partition, event);
  }

  /** Resolves once what was sent so far has left the process (paces a catch-up to the client). */
  written(): Promise<void> {
    return this.lastWrite;
  }

  drop(code: number, reason: string): void {
    this.onDrop(this);
    if (this.open) this.socket.close(code, reason);
  }

  private wants(event: RelayedEvent): boolean {
    return (
      event.tenant === this.filter.tenant &&
      (this.filter.channel === undefined || event.channel === this.filter.channel) &&
      (this.filter.status === undefined || event.status === this.filter.status)
    );
  }

  /** Sends a text frame; the same buffer goes to every client of an event, encoded once. */
  private send(frame: Buffer): void {
    if (!this.open) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.drop(CLOSE_TOO_SLOW, 'client too slow: frames are not being read');
      return;
    }
    if (this.backlog) {
      this.lastWrite = new Promise((resolve) => this.socket.send(frame, AS_TEXT, () => resolve()));
    } else {
      this.socket.send(frame, AS_TEXT);
    }
  }
}
