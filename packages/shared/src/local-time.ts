/** A local date-time without offset: `2027-03-14T09:00`, with optional seconds and fraction. */
export const LOCAL_DATE_TIME_PATTERN =
  '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])T([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?$';
/** A wall-clock time of day, `00:00`–`23:59`. */
export const TIME_OF_DAY_PATTERN = '^([01]\\d|2[0-3]):[0-5]\\d$';

export interface QuietHours {
  start: string;
  end: string;
}

const LOCAL_DATE_TIME = new RegExp(LOCAL_DATE_TIME_PATTERN);
const TIME_OF_DAY = new RegExp(TIME_OF_DAY_PATTERN);
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** A formatter costs ~50 µs to build and a batch reuses few zones; bounded, as callers choose the spelling. */
const formatters = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 1000;

/** Throws RangeError for a zone Intl does not know. */
function formatterFor(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(zone, formatter);
  }
  return formatter;
}

/**
 * An IANA zone name as Intl (full ICU) knows it: canonical names, their aliases (`US/Eastern`,
 * `Asia/Calcutta`, `EST5EDT`, `UTC`) and any letter case, since IANA never has two names that
 * differ only in case. Offsets (`+01:00`), abbreviations Intl lacks and padded names are refused.
 */
export function isValidTimeZone(zone: string): boolean {
  try {
    formatterFor(zone);
    return true;
  } catch {
    return false;
  }
}

/** Epoch ms of a wall-clock reading taken as UTC; Date.UTC alone would read years 0–99 as 1900s. */
function wallMs(year: number, month: number, day: number, hour: number, minute: number, second: number, ms = 0) {
  const date = new Date(Date.UTC(2000, 0, 1, hour, minute, second, ms));
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime();
}

/** The zone's wall clock at an instant, as wall ms; Intl gives whole seconds, the instant's ms carry over. */
function wallClockAt(epochMs: number, zone: string): number {
  const fields: Record<string, string> = {};
  for (const part of formatterFor(zone).formatToParts(epochMs)) fields[part.type] = part.value;
  const year = fields.era === 'BC' ? 1 - Number(fields.year) : Number(fields.year);
  const seconds = wallMs(year, Number(fields.month), Number(fields.day), Number(fields.hour),
    Number(fields.minute), Number(fields.second));
  return seconds + (((epochMs % 1000) + 1000) % 1000);
}

function offsetAt(epochMs: number, zone: string): number {
  return wallClockAt(epochMs, zone) - epochMs;
}

/**
 * Instants at which the zone's clock reads `wall`: one normally, two in an overlap (earlier
 * first), none in a gap. Offsets a day either side bracket any single transition (as Temporal does).
 */
function instantsOf(wall: number, zone: string): { instants: number[]; offsetBefore: number } {
  const offsetBefore = offsetAt(wall - DAY_MS, zone);
  const offsetAfter = offsetAt(wall + DAY_MS, zone);
  const candidates = offsetBefore === offsetAfter ? [wall - offsetBefore] : [wall - offsetBefore, wall - offsetAfter];
  const instants = candidates.filter((epoch) => wallClockAt(epoch, zone) === wall).sort((a, b) => a - b);
  return { instants, offsetBefore };
}

/**
 * The first instant after `notBefore` at which the zone reads `wall` (Temporal's "compatible"
 * rule): in an overlap the earlier reading unless it is already past; in a gap the time moves
 * forward by the gap (the wall time read with the offset in force before the change).
 */
function resolveWall(wall: number, zone: string, notBefore = -Infinity): number {
  const { instants, offsetBefore } = instantsOf(wall, zone);
  if (instants.length === 0) return wall - offsetBefore;
  return instants.find((epoch) => epoch > notBefore) ?? (instants[instants.length - 1] as number);
}

/**
 * Epoch ms of a local date-time without offset (`LOCAL_DATE_TIME_PATTERN`) in an IANA zone, or
 * null when it is no date (`2027-02-30T09:00` is refused, not rolled over). A time skipped by a
 * DST change moves forward by the gap; a time that happens twice takes the earlier. Fractions
 * beyond milliseconds are cut, as Date.parse does. Throws RangeError for an unknown zone.
 */
export function zonedTimeToEpoch(local: string, zone: string): number | null {
  if (!LOCAL_DATE_TIME.test(local)) return null;
  // The pattern fixes every field's position: YYYY-MM-DDTHH:MM[:SS[.fraction]].
  const field = (from: number, to: number) => Number(local.slice(from, to) || 0);
  const [year, month, day] = [field(0, 4), field(5, 7), field(8, 10)];
  const ms = Number(local.slice(20, 23).padEnd(3, '0'));
  const wall = wallMs(year, month, day, field(11, 13), field(14, 16), field(17, 19), ms);
  const date = new Date(wall);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  return resolveWall(wall, zone);
}

function minutesOfDay(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

/** Both ends `HH:MM`, and distinct: `start == end` would mean an empty or a 24-hour window. */
export function isValidQuietHours(quiet: QuietHours): boolean {
  return TIME_OF_DAY.test(quiet.start) && TIME_OF_DAY.test(quiet.end) && quiet.start !== quiet.end;
}

/**
 * When a send at `epochMs` may go out given a daily quiet window in local time: unchanged
 * outside [start, end) — start inclusive, end exclusive, the window crossing midnight when
 * end < start — else the next instant after `epochMs` at which the local clock reads `end`,
 * by the same DST rules as zonedTimeToEpoch. Throws RangeError for an unknown zone or a window
 * isValidQuietHours refuses.
 */
export function applyQuietHours(epochMs: number, zone: string, quiet: QuietHours): number {
  if (!isValidQuietHours(quiet)) throw new RangeError('quiet hours must be two distinct HH:MM times');
  const wall = wallClockAt(epochMs, zone);
  const midnight = wall - (((wall % DAY_MS) + DAY_MS) % DAY_MS);
  const now = wall - midnight;
  const start = minutesOfDay(quiet.start) * MINUTE_MS;
  const end = minutesOfDay(quiet.end) * MINUTE_MS;
  const crossesMidnight = end < start;
  const inside = crossesMidnight ? now >= start || now < end : now >= start && now < end;
  if (!inside) return epochMs;
  // Wall-clock ms have no DST: the next local day starts exactly DAY_MS later.
  const endDay = crossesMidnight && now >= start ? midnight + DAY_MS : midnight;
  return resolveWall(endDay + end, zone, epochMs);
}
