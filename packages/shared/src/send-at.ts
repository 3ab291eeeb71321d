import { MAX_SCHEDULE_AHEAD_MS } from './message.js';

/** Epoch ms of a `sendAt` given as epoch ms or ISO-8601 with offset; null when it is no time. */
export function parseSendAt(value: number | string): number | null {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : null;
}

export function isTooFarAhead(sendAt: number, now: number): boolean {
  return sendAt > now + MAX_SCHEDULE_AHEAD_MS;
}
