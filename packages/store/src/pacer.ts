import type { Channel } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import { defineScripts, type RedisClient } from './redis.js';
import { paceMessage, pauseChannel, pauseRecipient } from './lua/pacing.js';

/**
 * How much of the rate may leave at once (GCRA's burst tolerance), in ms of the rate: enough to
 * absorb jobs that fall due together when the rate is not binding, too little for a provider to
 * notice. At 80/s that is 8 messages; at 1/s nothing (one segment leaves a second after the last).
 */
export const PACING_BURST_MS = 100;
/** A hold outlives its time by this much, so a job that comes back late still finds it. */
const HOLD_GRACE_MS = 60_000;

export interface PaceRequest {
  id: string;
  channel: Channel;
  /** What the message costs of the rate: SMS segments, or 1. */
  units: number;
  /** The channel's rate in units per second; 0 = none (only pauses apply). */
  ratePerSecond: number;
  /** Checked against the recipient's own pause (Meta 131056). */
  recipient?: string;
}

export interface PaceDecision {
  /** true: send now; false: come back at `at`. */
  go: boolean;
  /** The message's slot (epoch ms, with a fraction). */
  at: number;
  /** Decided now, rather than an earlier decision found again (a job back at its time). */
  fresh: boolean;
}

/** Pauses seen by a worker that has no rate to ask about on every message. */
export interface ChannelThrottle {
  /** The channel is paused until then (a provider 429). */
  until: number;
  /** Some recipient of the channel is paused until at most then (Meta 131056). */
  recipientsUntil: number;
}

type Commands = {
  paceMessage(key: string, ...args: (string | number)[]): Promise<[string, string, string]>;
  pauseChannel(key: string, ...args: (string | number)[]): Promise<number>;
  pauseRecipient(key: string, ...args: (string | number)[]): Promise<number>;
};

/**
 * Fleet-wide pacing of each channel: a "next free slot" per channel (GCRA) in the global slot,
 * shared by every worker and every partition, counting units (SMS segments) rather than jobs,
 * and the pauses providers ask for, per channel (429) or per recipient (131056).
 */
export class Pacer {
  private readonly redis: RedisClient & Commands;

  constructor(
    redis: RedisClient,
    private readonly keys: Keyspace,
  ) {
    defineScripts(redis, { paceMessage, pauseChannel, pauseRecipient });
    this.redis = redis as RedisClient & Commands;
  }

  /**
   * Reserves the message's slot at the channel's rate (in the order the calls arrive), or finds the
   * one reserved before; either way the message may not leave before `at`.
   */
  async pace({ id, channel, units, ratePerSecond, recipient }: PaceRequest, now: number): Promise<PaceDecision> {
    const perUnitMs = ratePerSecond > 0 ? 1000 / ratePerSecond : 0;
    const [verdict, at, fresh] = await this.redis.paceMessage(
      this.keys.pacing(channel),
      this.keys.pacingHold(id),
      recipient === undefined ? '' : this.keys.pacingRecipient(channel, recipient),
      now,
      units,
      perUnitMs,
      PACING_BURST_MS,
      HOLD_GRACE_MS,
    );
    return { go: verdict === 'go', at: Number(at), fresh: fresh === '1' };
  }

  /** Every worker holds the channel's messages until `until` (a later pause already set stands). */
  async pauseChannel(channel: Channel, until: number): Promise<void> {
    await this.redis.pauseChannel(this.keys.pacing(channel), until);
  }

  /** Every worker holds this recipient's messages on the channel until `until`. */
  async pauseRecipient(channel: Channel, recipient: string, until: number, now: number): Promise<void> {
    await this.redis.pauseRecipient(this.keys.pacing(channel), this.keys.pacingRecipient(channel, recipient), until, now);
  }

  /** The pauses of each channel, for workers that do not ask on every message. */
  async throttles(channels: readonly Channel[]): Promise<Map<Channel, ChannelThrottle>> {
    const pipeline = this.redis.pipeline();
    for (const channel of channels) pipeline.hmget(this.keys.pacing(channel), 'until', 'recipients');
    const replies = (await pipeline.exec()) ?? [];
    return new Map(
      channels.map((channel, i) => {
        const [error, values] = replies[i] ?? [new Error('no reply')];
        if (error) throw error;
        const [until, recipients] = values as (string | null)[];
        return [channel, { until: Number(until ?? 0), recipientsUntil: Number(recipients ?? 0) }];
      }),
    );
  }

  /** For each message id: whether pacing told its job to wait (the reconciler leaves such a job alone). */
  async held(ids: string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.keys.pacingHold(id));
    const replies = (await pipeline.exec()) ?? [];
    return ids.map((_, i) => replies[i]?.[1] === 1);
  }
}
