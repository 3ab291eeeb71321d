import {
  LOCAL_DATE_TIME_PATTERN,
  applyQuietHours,
  isTooFarAhead,
  isValidQuietHours,
  isValidTimeZone,
  parseSendAt,
  zonedTimeToEpoch,
  type MessageRecord,
  type QuietHours,
  type UpdateMessageBody,
} from '@punctual/shared';
import { InvalidField } from './errors.js';

/** The zone a message's local times are read in, and its daily quiet window. */
export interface TimeRules {
  timeZone?: string;
  quietHours?: QuietHours;
}

/** When a message goes out, and the time asked for when quiet hours moved it. */
export interface SendTime {
  sendAt: number;
  requestedSendAt?: number;
}

const LOCAL_DATE_TIME = new RegExp(LOCAL_DATE_TIME_PATTERN);

export function isLocalTime(value: number | string): value is string {
  return typeof value === 'string' && LOCAL_DATE_TIME.test(value);
}

/** A zone the platform's time-zone data (Intl) knows; a window needs one and two distinct ends. */
export function checkTimeRules({ timeZone, quietHours }: TimeRules): void {
  if (timeZone !== undefined && !isValidTimeZone(timeZone)) {
    throw new InvalidField('/timeZone', 'is not a known IANA time zone (such as America/New_York)');
  }
  if (quietHours === undefined) return;
  if (timeZone === undefined) throw new InvalidField('/quietHours', 'needs timeZone: the window is in local time');
  if (!isValidQuietHours(quietHours)) throw new InvalidField('/quietHours', 'start and end must be different times');
}

/**
 * Epoch ms of a requested sendAt: epoch ms, ISO-8601 with offset, or a local date-time read in
 * `timeZone` (a time skipped by a DST change moves forward by the gap, one that happens twice
 * takes the earlier). At most one year ahead.
 */
export function askedTime(value: number | string, timeZone: string | undefined, now: number): number {
  let ms: number | null;
  if (isLocalTime(value)) {
    if (timeZone === undefined) throw new InvalidField('/sendAt', 'has no offset: give timeZone, or an offset such as Z or -05:00');
    ms = zonedTimeToEpoch(value, timeZone);
  } else {
    ms = parseSendAt(value);
  }
  if (ms === null) throw new InvalidField('/sendAt', 'is not a valid time');
  if (isTooFarAhead(ms, now)) throw new InvalidField('/sendAt', 'must be at most one year ahead');
  return ms;
}

/**
 * The send time out of the quiet window: a time inside it moves to the window's end (local). A
 * time already past is sent now, so it is now that must be outside the window.
 */
export function outOfQuietHours(asked: number, { timeZone, quietHours }: TimeRules, now: number): SendTime {
  if (!quietHours || !timeZone) return { sendAt: asked };
  const earliest = Math.max(asked, now);
  const sendAt = applyQuietHours(earliest, timeZone, quietHours);
  return sendAt === earliest ? { sendAt: asked } : { sendAt, requestedSendAt: asked };
}

/** Whether a PUT's new time can only be worked out with the stored record's zone or window. */
export function needsStoredRules(body: UpdateMessageBody): boolean {
  return body.timeZone !== undefined || body.quietHours !== undefined || (body.sendAt !== undefined && isLocalTime(body.sendAt));
}

/**
 * The time fields of a PUT: its zone and window merged over the record's, and the send time they
 * give to the new sendAt, or to the time the record asked for when only the rules change.
 * Without the record (`needsStoredRules` false) the sendAt is taken as it is, and the update
 * script refuses it (`recheck`) if the record turns out to have a window.
 */
export function sendTimePatch(body: UpdateMessageBody, current: MessageRecord | undefined, now: number): { sendAt?: number; requestedSendAt?: number | null } {
  const rules: TimeRules = {
    timeZone: body.timeZone ?? current?.timeZone,
    quietHours: body.quietHours === null ? undefined : (body.quietHours ?? current?.quietHours),
  };
  checkTimeRules(rules);
  const asked = body.sendAt !== undefined ? askedTime(body.sendAt, rules.timeZone, now) : current && (current.requestedSendAt ?? current.sendAt);
  if (asked === undefined) return {};
  const { sendAt, requestedSendAt } = outOfQuietHours(asked, rules, now);
  return { sendAt, requestedSendAt: requestedSendAt ?? null };
}
