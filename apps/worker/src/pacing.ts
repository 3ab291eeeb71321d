import { CHANNELS, type Channel } from '@punctual/shared';
import { storedSegments, type ChannelThrottle, type MessageStore, type PaceRequest, type Pacer } from '@punctual/store';

/** Told how long pacing made each message wait (the worker's metrics). */
export interface PacingObserver {
  waited(channel: Channel, ms: number): void;
}

export interface DeliveryPacingOptions {
  pacer: Pacer;
  store: MessageStore;
  /** Units per second by channel (SMS segments, WhatsApp messages); 0 = unlimited. */
  rates: Record<Channel, number>;
  observe?: PacingObserver;
  /** How often the pauses other workers set are read, for channels without a rate. */
  refreshMs?: number;
}

const NOT_THROTTLED: ChannelThrottle = { until: 0, recipientsUntil: 0 };

/** A message asking for its slot, waiting for the others asking in the same turn of the event loop. */
interface Asking {
  id: string;
  now: number;
  resolve: (at: number | undefined) => void;
  reject: (err: unknown) => void;
}

/**
 * The worker's side of pacing: before a message is claimed, when its channel has a rate or a
 * pause, asks the fleet-wide Pacer for its slot. A channel with no rate and no pause costs no
 * Redis call per message: the pauses other workers set (provider 429s, Meta 131056) are read
 * every `refreshMs` instead, and a pause this worker sets counts at once.
 */
export class DeliveryPacing {
  private throttles = new Map<Channel, ChannelThrottle>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The messages asking for a slot in this turn of the event loop (see `admit`). */
  private asking: Asking[] = [];

  constructor(private readonly options: DeliveryPacingOptions) {}

  /** Starts reading the fleet's pauses; returns the function that stops it. */
  start(): () => void {
    const refresh = async () => {
      try {
        this.merge(await this.options.pacer.throttles(CHANNELS));
      } catch {
        // Redis away: keep what is known; the provider's next 429 pauses the channel again
      }
      if (!this.stopped) this.timer = setTimeout(() => void refresh(), this.options.refreshMs ?? 200);
    };
    void refresh();
    return () => {
      this.stopped = true;
      clearTimeout(this.timer);
    };
  }

  /**
   * When the message may leave: undefined = now (or not this function's business: a message that
   * is missing, final or early is left to the claim); a time = come back then, its slot is kept.
   *
   * BullMQ hands due jobs out in `sendAt` order, but concurrent jobs may start a few microtasks
   * out of it (one fetched by a finishing job takes longer to start than one fetched by the
   * worker's loop), and the Pacer gives slots in the order its calls arrive. So the messages
   * asking in one turn of the event loop ask together: their records are read, then their slots
   * asked for in (`sendAt`, id) order on one connection, which Redis runs in that order.
   */
  admit(id: string, now: number): Promise<number | undefined> {
    if (!this.engaged(now)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      if (this.asking.length === 0) setImmediate(() => void this.admitTogether());
      this.asking.push({ id, now, resolve, reject });
    });
  }

  private async admitTogether(): Promise<void> {
    const asking = this.asking;
    this.asking = [];
    const read = await Promise.allSettled(asking.map(({ id }) => this.options.store.fields(id)));
    const paced: { ask: Asking; request: PaceRequest; sendAt: number }[] = [];
    asking.forEach((ask, i) => {
      const fields = read[i]!;
      if (fields.status === 'rejected') return ask.reject(fields.reason);
      const request = this.slotRequest(ask.id, fields.value, ask.now);
      if (request) paced.push({ ask, request, sendAt: Number(fields.value!.sendAt) });
      else ask.resolve(undefined);
    });
    paced.sort((a, b) => a.sendAt - b.sendAt || (a.ask.id < b.ask.id ? -1 : 1));
    for (const { ask, request } of paced) {
      this.options.pacer.pace(request, ask.now).then((decision) => {
        if (decision.fresh) this.options.observe?.waited(request.channel, Math.max(0, decision.at - ask.now));
        ask.resolve(decision.go ? undefined : Math.ceil(decision.at));
      }, ask.reject);
    }
  }

  /** What the message asks the Pacer for, or undefined when it need not ask (no rate, no pause, not due). */
  private slotRequest(id: string, fields: Record<string, string> | null, now: number): PaceRequest | undefined {
    if (!fields || (fields.status !== 'scheduled' && fields.status !== 'sending')) return undefined;
    if (fields.status === 'scheduled' && Number(fields.sendAt) > now) return undefined;
    const channel = fields.channel as Channel;
    const rate = this.options.rates[channel] ?? 0;
    const throttle = this.throttleOf(channel);
    if (rate <= 0 && throttle.until <= now && throttle.recipientsUntil <= now) return undefined;
    const units = channel === 'sms' ? storedSegments(fields) : 1;
    return { id, channel, units, ratePerSecond: rate, recipient: fields.recipient };
  }

  /** A provider 429: every worker holds the channel's messages until `until`. */
  async pauseChannel(channel: Channel, until: number): Promise<void> {
    this.merge(new Map([[channel, { until, recipientsUntil: 0 }]]));
    await this.options.pacer.pauseChannel(channel, until);
  }

  /** Meta 131056: every worker holds this recipient's messages on the channel until `until`. */
  async pauseRecipient(channel: Channel, recipient: string, until: number): Promise<void> {
    this.merge(new Map([[channel, { until: 0, recipientsUntil: until }]]));
    await this.options.pacer.pauseRecipient(channel, recipient, until, Date.now());
  }

  private engaged(now: number): boolean {
    for (const channel of CHANNELS) {
      if ((this.options.rates[channel] ?? 0) > 0) return true;
      const throttle = this.throttleOf(channel);
      if (throttle.until > now || throttle.recipientsUntil > now) return true;
    }
    return false;
  }

  /** The pauses of a channel this worker knows of (set here, or read from the fleet's). */
  throttleOf(channel: Channel): ChannelThrottle {
    return this.throttles.get(channel) ?? NOT_THROTTLED;
  }

  private merge(seen: Map<Channel, ChannelThrottle>): void {
    for (const [channel, throttle] of seen) {
      const known = this.throttleOf(channel);
      this.throttles.set(channel, {
        until: Math.max(known.until, throttle.until),
        recipientsUntil: Math.max(known.recipientsUntil, throttle.recipientsUntil),
      });
    }
  }
}
