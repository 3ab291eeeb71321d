import type { MessageEvent } from '@punctual/shared';

export type FeedState = 'connecting' | 'live' | 'reconnecting';

export interface LiveFeedHandlers {
  onEvent: (event: MessageEvent) => void;
  /** The feed cannot replay what was missed (or this is a fresh start): reload from the API. */
  onResync: () => void;
  onState: (state: FeedState) => void;
}

const MAX_RETRY_DELAY_MS = 10_000;

/**
 * The WebSocket feed, reconnected for as long as the page is open; each reconnect resumes after
 * the last event received (`?since=`), so nothing in between is lost.
 */
export class LiveFeed {
  private socket: WebSocket | null = null;
  private lastEventId: string | null = null;
  private failures = 0;
  private retryTimer: number | undefined;
  private stopped = false;

  constructor(
    private readonly url: (since: string | null) => string,
    private readonly handlers: LiveFeedHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the current socket and opens a new one (a new key, say). */
  restart(): void {
    this.stop();
    this.lastEventId = null;
    this.failures = 0;
    this.start();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
    this.socket = null;
  }

  private connect(): void {
    this.handlers.onState(this.failures === 0 && this.lastEventId === null ? 'connecting' : 'reconnecting');
    // a resume point refused twice in a row is dropped: start over and reload instead
    if (this.failures >= 2) this.lastEventId = null;
    const socket = new WebSocket(this.url(this.lastEventId));
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.failures = 0;
      this.handlers.onState('live');
      // without a resume point, what changed while away is only in the API
      if (this.lastEventId === null) this.handlers.onResync();
    });
    socket.addEventListener('message', (message) => this.receive(String(message.data)));
    socket.addEventListener('close', () => {
      if (this.socket !== socket || this.stopped) return;
      this.failures += 1;
      this.handlers.onState('reconnecting');
      const delay = Math.min(MAX_RETRY_DELAY_MS, 500 * 2 ** Math.min(this.failures, 5));
      this.retryTimer = window.setTimeout(() => this.connect(), delay);
    });
  }

  private receive(text: string): void {
    let frame: MessageEvent | { event: 'resync' };
    try {
      frame = JSON.parse(text) as MessageEvent | { event: 'resync' };
    } catch {
      return;
    }
    if (frame.event === 'resync') return this.handlers.onResync();
    this.lastEventId = frame.id;
    this.handlers.onEvent(frame);
  }
}
