import { describe, expect, it } from 'vitest';
import { ISO_WITH_OFFSET_PATTERN } from '../src/message.js';
import {
  LOCAL_DATE_TIME_PATTERN,
  TIME_OF_DAY_PATTERN,
  applyQuietHours,
  isValidQuietHours,
  isValidTimeZone,
  zonedTimeToEpoch,
} from '../src/local-time.js';

/** Expected instants are written with their offset, so each reads as the local clock says it. */
const at = (iso: string) => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test date ${iso}`);
  return ms;
};

/** The zone's clock as `YYYY-MM-DDTHH:MM:SS`, read straight from Intl (not through the module). */
function clockOf(zone: string): (epochMs: number) => string {
  const format = new Intl.DateTimeFormat('sv-SE', { timeZone: zone, dateStyle: 'short', timeStyle: 'medium' });
  return (epochMs) => format.format(epochMs).replace(' ', 'T');
}

describe('isValidTimeZone', () => {
  it.each(['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'UTC', 'Etc/GMT+5', 'Asia/Kolkata'])(
    'accepts the IANA name %s',
    (zone) => expect(isValidTimeZone(zone)).toBe(true),
  );

  it.each(['US/Eastern', 'Asia/Calcutta', 'Europe/Kiev', 'EST5EDT', 'GMT'])('accepts the IANA alias %s', (zone) => {
    expect(isValidTimeZone(zone)).toBe(true);
  });

  it('accepts any letter case, as IANA names never differ only in case', () => {
    expect(isValidTimeZone('america/new_york')).toBe(true);
    expect(isValidTimeZone('utc')).toBe(true);
    expect(isValidTimeZone('europe/LONDON')).toBe(true);
  });

  it.each([
    '', 'Foo/Bar', 'America/New York', ' UTC', 'America/New_York ', 'America/New_York\u0000', '+01:00', 'Z',
    'local', 'America/', '../../etc/passwd', 'Europe/London/Extra',
  ])('refuses %j', (zone) => {
    expect(isValidTimeZone(zone)).toBe(false);
  });

  it('refuses a huge string', () => {
    expect(isValidTimeZone(`America/${'x'.repeat(100_000)}`)).toBe(false);
  });
});

describe('LOCAL_DATE_TIME_PATTERN and TIME_OF_DAY_PATTERN', () => {
  const local = new RegExp(LOCAL_DATE_TIME_PATTERN, 'u'); // ajv compiles patterns with the u flag
  const time = new RegExp(TIME_OF_DAY_PATTERN, 'u');

  it('match local date-times without offset, and never one with an offset', () => {
    const withoutOffset = ['2027-03-14T09:00', '2027-03-14T09:00:00', '2027-03-14T09:00:00.5',
      '2027-03-14T23:59:59.123456789'];
    for (const text of withoutOffset) {
      expect(local.test(text), text).toBe(true);
      expect(new RegExp(ISO_WITH_OFFSET_PATTERN).test(text), text).toBe(false);
    }
    for (const text of ['2027-03-14T09:00Z', '2027-03-14T09:00:00+01:00', '2027-03-14T09:00:00.000-0500']) {
      expect(local.test(text), text).toBe(false);
    }
  });

  it.each(['2027-03-14', '2027-03-14 09:00', '2027-3-14T09:00', '2027-13-01T09:00', '2027-00-01T09:00',
    '2027-03-32T09:00', '2027-03-14T24:00', '2027-03-14T09:60', '2027-03-14T09:00:60', '2027-03-14T09',
    '2027-03-14T09:00:00.', '2027-03-14t09:00', '2027-03-14T09:00\n', ' 2027-03-14T09:00', '+2027-03-14T09:00'])(
    'local pattern refuses %j',
    (text) => expect(local.test(text)).toBe(false),
  );

  it('time pattern takes 00:00–23:59 only', () => {
    for (const text of ['00:00', '08:00', '21:30', '23:59']) expect(time.test(text), text).toBe(true);
    for (const text of ['24:00', '8:00', '08:60', '0800', '08:00:00', ' 08:00', '']) {
      expect(time.test(text), text).toBe(false);
    }
  });
});

describe('zonedTimeToEpoch', () => {
  it('reads ordinary times with the zone offset in force', () => {
    expect(zonedTimeToEpoch('2027-03-14T09:00', 'America/New_York')).toBe(at('2027-03-14T09:00-04:00'));
    expect(zonedTimeToEpoch('2027-01-10T09:00', 'America/New_York')).toBe(at('2027-01-10T09:00-05:00'));
    expect(zonedTimeToEpoch('2027-07-01T12:00', 'Asia/Kolkata')).toBe(at('2027-07-01T12:00+05:30'));
    expect(zonedTimeToEpoch('2027-07-01T12:00', 'UTC')).toBe(at('2027-07-01T12:00Z'));
    expect(zonedTimeToEpoch('2027-07-01T12:00', 'america/new_york')).toBe(at('2027-07-01T12:00-04:00'));
  });

  it('takes seconds and fractions; digits beyond milliseconds are cut, as Date.parse does', () => {
    const base = at('2027-06-01T09:00:00+02:00');
    expect(zonedTimeToEpoch('2027-06-01T09:00:00', 'Europe/Berlin')).toBe(base);
    expect(zonedTimeToEpoch('2027-06-01T09:00:07', 'Europe/Berlin')).toBe(base + 7000);
    expect(zonedTimeToEpoch('2027-06-01T09:00:07.5', 'Europe/Berlin')).toBe(base + 7500);
    expect(zonedTimeToEpoch('2027-06-01T09:00:07.123456789', 'Europe/Berlin')).toBe(base + 7123);
    expect(Date.parse('2027-06-01T09:00:07.123456789+02:00')).toBe(base + 7123);
  });

  it('reads historical offsets, seconds included (New York local mean time, -4:56:02)', () => {
    expect(zonedTimeToEpoch('1850-01-01T00:00', 'America/New_York')).toBe(at('1850-01-01T04:56:02Z'));
  });

  describe('a local time skipped by a DST change moves forward by the gap', () => {
    it.each([
      ['America/New_York', '2027-03-14T02:30', '2027-03-14T03:30-04:00'],
      ['America/New_York', '2027-03-14T02:00', '2027-03-14T03:00-04:00'],
      ['America/New_York', '2027-03-14T02:59:59.999', '2027-03-14T03:59:59.999-04:00'],
      ['Europe/London', '2027-03-28T01:30', '2027-03-28T02:30+01:00'],
      ['Europe/Berlin', '2027-03-28T02:30', '2027-03-28T03:30+02:00'],
      ['Australia/Sydney', '2027-10-03T02:30', '2027-10-03T03:30+11:00'],
      // Lord Howe springs forward by 30 minutes: 02:00 +10:30 becomes 02:30 +11:00.
      ['Australia/Lord_Howe', '2027-10-03T02:15', '2027-10-03T02:45+11:00'],
      // Brazil's last DST began at midnight: 2018-11-04 00:00–01:00 did not exist.
      ['America/Sao_Paulo', '2018-11-04T00:00', '2018-11-04T01:00-02:00'],
      ['America/Sao_Paulo', '2018-11-04T00:30', '2018-11-04T01:30-02:00'],
      // Samoa skipped 2011-12-30 entirely, crossing the date line: a 24-hour gap.
      ['Pacific/Apia', '2011-12-30T12:00', '2011-12-31T12:00+14:00'],
    ])('%s %s → %s', (zone, local, expected) => {
      expect(zonedTimeToEpoch(local, zone)).toBe(at(expected));
    });

    it('keeps the times either side of the gap as they are', () => {
      expect(zonedTimeToEpoch('2027-03-14T01:59:59.999', 'America/New_York')).toBe(at('2027-03-14T01:59:59.999-05:00'));
      expect(zonedTimeToEpoch('2027-03-14T03:00', 'America/New_York')).toBe(at('2027-03-14T03:00-04:00'));
    });
  });

  describe('a local time that happens twice takes the earlier', () => {
    it.each([
      ['America/New_York', '2027-11-07T01:30', '2027-11-07T01:30-04:00'],
      ['America/New_York', '2027-11-07T01:00', '2027-11-07T01:00-04:00'],
      ['America/New_York', '2027-11-07T01:59:59.999', '2027-11-07T01:59:59.999-04:00'],
      ['Europe/London', '2027-10-31T01:30', '2027-10-31T01:30+01:00'],
      ['Europe/Berlin', '2027-10-31T02:30', '2027-10-31T02:30+02:00'],
      ['Australia/Sydney', '2027-04-04T02:30', '2027-04-04T02:30+11:00'],
      ['Australia/Lord_Howe', '2027-04-04T01:45', '2027-04-04T01:45+11:00'],
      ['America/Sao_Paulo', '2019-02-16T23:30', '2019-02-16T23:30-02:00'],
    ])('%s %s → %s', (zone, local, expected) => {
      expect(zonedTimeToEpoch(local, zone)).toBe(at(expected));
    });

    it('reads the time just after the overlap with the new offset', () => {
      expect(zonedTimeToEpoch('2027-11-07T02:00', 'America/New_York')).toBe(at('2027-11-07T02:00-05:00'));
      expect(zonedTimeToEpoch('2027-10-31T02:00', 'Europe/London')).toBe(at('2027-10-31T02:00Z'));
    });
  });

  it.each(['2027-02-30T09:00', '2027-02-29T09:00', '2027-04-31T09:00', '2100-02-29T09:00', '2027-02-31T00:00:00.000'])(
    'refuses %s instead of rolling it over',
    (local) => expect(zonedTimeToEpoch(local, 'America/New_York')).toBeNull(),
  );

  it('takes 29 February in a leap year', () => {
    expect(zonedTimeToEpoch('2028-02-29T09:00', 'UTC')).toBe(at('2028-02-29T09:00Z'));
    expect(zonedTimeToEpoch('2000-02-29T09:00', 'UTC')).toBe(at('2000-02-29T09:00Z'));
  });

  it.each(['', '2027-03-14', '2027-03-14T09:00Z', '2027-03-14T09:00+01:00', '2027-03-14 09:00', '2027-03-14T24:00',
    '2027-13-14T09:00', '2027-03-14T09:00:00.', 'tomorrow', '2027-03-14T09:00\n'])('refuses %j', (local) => {
    expect(zonedTimeToEpoch(local, 'UTC')).toBeNull();
  });

  it('throws RangeError for an unknown zone (callers check isValidTimeZone first)', () => {
    expect(() => zonedTimeToEpoch('2027-03-14T09:00', 'Mars/Olympus_Mons')).toThrow(RangeError);
  });

  it.each(['America/New_York', 'Europe/London', 'Australia/Sydney', 'Australia/Lord_Howe', 'America/Sao_Paulo'])(
    'round-trips every quarter hour of a DST year in %s',
    (zone) => {
      const year = zone === 'America/Sao_Paulo' ? 2018 : 2027;
      const from = at(`${year}-01-01T00:00Z`);
      const to = at(`${year + 1}-01-01T00:00Z`);
      const clock = clockOf(zone);
      let repeated = 0;
      for (let epoch = from; epoch < to; epoch += 15 * 60_000) {
        const local = clock(epoch);
        const back = zonedTimeToEpoch(local, zone);
        // The second pass through an overlap maps back to the first; every other instant to itself.
        if (back !== epoch) {
          repeated += 1;
          expect(back).toBeLessThan(epoch);
          expect(clock(back as number)).toBe(local);
        }
      }
      // One overlap a year: an hour (30 minutes on Lord Howe) of quarter hours read twice.
      expect(repeated).toBe(zone === 'Australia/Lord_Howe' ? 2 : 4);
    },
  );
});

describe('isValidQuietHours', () => {
  it('takes two distinct HH:MM times, either order', () => {
    expect(isValidQuietHours({ start: '21:00', end: '08:00' })).toBe(true);
    expect(isValidQuietHours({ start: '12:00', end: '14:00' })).toBe(true);
    expect(isValidQuietHours({ start: '23:00', end: '00:00' })).toBe(true);
  });

  it.each([
    { start: '08:00', end: '08:00' },
    { start: '21:00', end: '24:00' },
    { start: '9:00', end: '17:00' },
    { start: '21:00', end: '08:60' },
    { start: '21:00:00', end: '08:00' },
    { start: '', end: '08:00' },
  ])('refuses %j', (quiet) => expect(isValidQuietHours(quiet)).toBe(false));
});

describe('applyQuietHours', () => {
  const night = { start: '21:00', end: '08:00' };
  const ny = 'America/New_York';

  it('leaves a time outside the window unchanged', () => {
    for (const local of ['2027-06-01T12:00-04:00', '2027-06-01T08:00-04:00', '2027-06-01T20:59:59.999-04:00']) {
      expect(applyQuietHours(at(local), ny, night), local).toBe(at(local));
    }
  });

  it('moves a time inside a window that crosses midnight to its end, the next morning or the same one', () => {
    expect(applyQuietHours(at('2027-06-01T21:00-04:00'), ny, night)).toBe(at('2027-06-02T08:00-04:00'));
    expect(applyQuietHours(at('2027-06-01T23:59:59.999-04:00'), ny, night)).toBe(at('2027-06-02T08:00-04:00'));
    expect(applyQuietHours(at('2027-06-02T00:00-04:00'), ny, night)).toBe(at('2027-06-02T08:00-04:00'));
    expect(applyQuietHours(at('2027-06-02T07:59:59.999-04:00'), ny, night)).toBe(at('2027-06-02T08:00-04:00'));
  });

  it('handles a window within one day', () => {
    const lunch = { start: '12:00', end: '14:00' };
    expect(applyQuietHours(at('2027-06-01T11:59-04:00'), ny, lunch)).toBe(at('2027-06-01T11:59-04:00'));
    expect(applyQuietHours(at('2027-06-01T12:00-04:00'), ny, lunch)).toBe(at('2027-06-01T14:00-04:00'));
    expect(applyQuietHours(at('2027-06-01T13:59-04:00'), ny, lunch)).toBe(at('2027-06-01T14:00-04:00'));
    expect(applyQuietHours(at('2027-06-01T14:00-04:00'), ny, lunch)).toBe(at('2027-06-01T14:00-04:00'));
  });

  it('handles a window ending at midnight', () => {
    const late = { start: '23:00', end: '00:00' };
    expect(applyQuietHours(at('2027-12-31T23:30+01:00'), 'Europe/Berlin', late)).toBe(at('2028-01-01T00:00+01:00'));
    expect(applyQuietHours(at('2028-01-01T00:00+01:00'), 'Europe/Berlin', late)).toBe(at('2028-01-01T00:00+01:00'));
  });

  it('reads the window in the zone, not in UTC', () => {
    // 03:00Z is 23:00 in New York (quiet) and 12:00 in Tokyo (not).
    expect(applyQuietHours(at('2027-06-02T03:00Z'), ny, night)).toBe(at('2027-06-02T08:00-04:00'));
    expect(applyQuietHours(at('2027-06-02T03:00Z'), 'Asia/Tokyo', night)).toBe(at('2027-06-02T03:00Z'));
  });

  describe('on a DST night the end is the local end, however long the night', () => {
    it.each([
      ['America/New_York', '2027-03-13T22:00-05:00', '2027-03-14T08:00-04:00'],
      ['America/New_York', '2027-11-06T22:00-04:00', '2027-11-07T08:00-05:00'],
      ['Europe/London', '2027-03-27T23:00Z', '2027-03-28T08:00+01:00'],
      ['Europe/London', '2027-10-30T23:00+01:00', '2027-10-31T08:00Z'],
      ['Australia/Sydney', '2027-10-02T22:00+10:00', '2027-10-03T08:00+11:00'],
      ['Australia/Lord_Howe', '2027-10-02T21:00+10:30', '2027-10-03T08:00+11:00'],
      ['Australia/Lord_Howe', '2027-04-03T21:00+11:00', '2027-04-04T08:00+10:30'],
    ])('%s %s → %s', (zone, time, expected) => {
      expect(applyQuietHours(at(time), zone, night)).toBe(at(expected));
    });
  });

  it('an end skipped by the DST gap moves forward by the gap, as zonedTimeToEpoch does', () => {
    const early = { start: '01:00', end: '02:30' };
    expect(applyQuietHours(at('2027-03-14T01:30-05:00'), ny, early)).toBe(at('2027-03-14T03:30-04:00'));
    // Brazil's midnight gap: 00:30 did not exist on 2018-11-04.
    const sp = { start: '21:00', end: '00:30' };
    expect(applyQuietHours(at('2018-11-03T22:00-03:00'), 'America/Sao_Paulo', sp)).toBe(at('2018-11-04T01:30-02:00'));
  });

  it('a start skipped by the gap: the window begins when the clock passes it', () => {
    const window = { start: '02:30', end: '06:00' };
    expect(applyQuietHours(at('2027-03-14T01:59-05:00'), ny, window)).toBe(at('2027-03-14T01:59-05:00'));
    expect(applyQuietHours(at('2027-03-14T03:00-04:00'), ny, window)).toBe(at('2027-03-14T06:00-04:00'));
  });

  it('an end inside the autumn overlap is its next reading after the time, never an earlier instant', () => {
    const window = { start: '00:00', end: '01:30' };
    // First pass (EDT): the end is 01:30 EDT.
    expect(applyQuietHours(at('2027-11-07T01:15-04:00'), ny, window)).toBe(at('2027-11-07T01:30-04:00'));
    // 01:45 EDT is outside; then the clock goes back and 01:15 EST is quiet again, until 01:30 EST.
    expect(applyQuietHours(at('2027-11-07T01:45-04:00'), ny, window)).toBe(at('2027-11-07T01:45-04:00'));
    expect(applyQuietHours(at('2027-11-07T01:15-05:00'), ny, window)).toBe(at('2027-11-07T01:30-05:00'));
  });

  it('never moves a time back, and moves it exactly to the local end', () => {
    for (const zone of [ny, 'Europe/London', 'Australia/Lord_Howe']) {
      const clock = clockOf(zone);
      for (let epoch = at('2027-01-01T00:00Z'); epoch < at('2028-01-01T00:00Z'); epoch += 30 * 60_000) {
        const result = applyQuietHours(epoch, zone, night);
        if (result === epoch) continue;
        expect(result).toBeGreaterThan(epoch);
        // 11 hours of night, plus the hour a clock set back adds.
        expect(result - epoch).toBeLessThanOrEqual(12 * 3_600_000);
        expect(clock(result).slice(11)).toBe('08:00:00');
      }
    }
  });

  it('throws RangeError for an unknown zone or a window isValidQuietHours refuses', () => {
    expect(() => applyQuietHours(at('2027-06-01T22:00Z'), 'Nowhere/Land', night)).toThrow(RangeError);
    expect(() => applyQuietHours(at('2027-06-01T22:00Z'), ny, { start: '08:00', end: '08:00' })).toThrow(RangeError);
    expect(() => applyQuietHours(at('2027-06-01T22:00Z'), ny, { start: '21:00', end: '24:00' })).toThrow(RangeError);
  });
});
