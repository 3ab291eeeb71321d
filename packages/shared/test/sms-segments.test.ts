import { describe, expect, it } from 'vitest';
import { smsSegments } from '../src/sms-segments.js';

/** 3GPP TS 23.038 §6.2.1 default alphabet, written out here by code point, apart from the source. */
const BASIC = [
  0x40, 0xa3, 0x24, 0xa5, 0xe8, 0xe9, 0xf9, 0xec, 0xf2, 0xc7, 0x0a, 0xd8, 0xf8, 0x0d, 0xc5, 0xe5,
  0x394, 0x5f, 0x3a6, 0x393, 0x39b, 0x3a9, 0x3a0, 0x3a8, 0x3a3, 0x398, 0x39e, /* ESC */ 0xc6, 0xe6, 0xdf, 0xc9,
  0x20, 0x21, 0x22, 0x23, 0xa4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
  ...range(0x30, 0x39), 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
  0xa1, ...range(0x41, 0x5a), 0xc4, 0xd6, 0xd1, 0xdc, 0xa7,
  0xbf, ...range(0x61, 0x7a), 0xe4, 0xf6, 0xf1, 0xfc, 0xe0,
].map((code) => String.fromCodePoint(code));
/** §6.2.1.1 extension table: form feed ^ { } \ [ ~ ] | € */
const EXTENSION = [0x0c, 0x5e, 0x7b, 0x7d, 0x5c, 0x5b, 0x7e, 0x5d, 0x7c, 0x20ac].map((code) =>
  String.fromCodePoint(code),
);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const gsm = (segments: number, units: number) => ({ encoding: 'GSM-7', segments, units });
const ucs2 = (segments: number, units: number) => ({ encoding: 'UCS-2', segments, units });

describe('smsSegments: the GSM 03.38 tables', () => {
  it('has 127 basic characters (128 codes less ESC) and 10 extension characters', () => {
    expect(new Set(BASIC).size).toBe(127);
    expect(new Set(EXTENSION).size).toBe(10);
  });

  it('counts every basic character as one septet', () => {
    for (const char of BASIC) {
      expect(smsSegments(char), `U+${char.codePointAt(0)?.toString(16)}`).toEqual(gsm(1, 1));
    }
    expect(smsSegments(BASIC.join(''))).toEqual(gsm(1, 127));
  });

  it('counts every extension character as two septets', () => {
    for (const char of EXTENSION) expect(smsSegments(char)).toEqual(gsm(1, 2));
    expect(smsSegments(EXTENSION.join(''))).toEqual(gsm(1, 20));
  });

  it('makes the message UCS-2 for any character in neither table', () => {
    const outside = ['ç', '`', 'Á', 'í', 'ó', 'ú', 'â', 'ê', 'õ', 'ã', '\t', '\u00a0', '\u001b', '\u2126', '\u2206',
      '“', '’', '…', '¢', 'ÿ', 'ł', 'ж'];
    for (const char of outside) expect(smsSegments(`Hello ${char}`), char).toEqual(ucs2(1, 7));
  });

  it('takes the Greek capitals, not their look-alike symbols', () => {
    expect(smsSegments('\u03a9\u0394').encoding).toBe('GSM-7');
    expect(smsSegments('\u2126').encoding).toBe('UCS-2'); // OHM SIGN
    expect(smsSegments('\u2206').encoding).toBe('UCS-2'); // INCREMENT
  });

  it('has the capital C cedilla (0x09) and not the small one', () => {
    expect(smsSegments('Ç').encoding).toBe('GSM-7');
    expect(smsSegments('ç').encoding).toBe('UCS-2');
  });
});

describe('smsSegments: GSM-7 parts', () => {
  it.each([
    [1, gsm(1, 1)],
    [160, gsm(1, 160)],
    [161, gsm(2, 161)],
    [306, gsm(2, 306)],
    [307, gsm(3, 307)],
    [459, gsm(3, 459)],
    [460, gsm(4, 460)],
    [4096, gsm(27, 4096)],
  ])('%i characters', (length, expected) => {
    expect(smsSegments('a'.repeat(length))).toEqual(expected);
  });

  it('counts € as two: 158 + € fits one part, 159 + € does not', () => {
    expect(smsSegments(`${'a'.repeat(158)}€`)).toEqual(gsm(1, 160));
    expect(smsSegments(`${'a'.repeat(159)}€`)).toEqual(gsm(2, 161));
  });

  it('80 extension characters are 160 septets: one part; 81 are two', () => {
    expect(smsSegments('{'.repeat(80))).toEqual(gsm(1, 160));
    expect(smsSegments('{'.repeat(81))).toEqual(gsm(2, 162));
  });

  it('never splits an escape sequence: one that would straddle a part starts the next one', () => {
    // 152 + € + 151 = 305 septets: € takes septets 153–154 and would straddle, so it moves to part 2.
    // Part 1 holds 152 septets, part 2 holds € + 151 = 153: two parts, as a plain count says.
    expect(smsSegments(`${'a'.repeat(152)}€${'a'.repeat(151)}`)).toEqual(gsm(2, 305));
    // 152 + € + 152 = 306 septets, which a plain count calls two parts; the moved € makes it three.
    expect(smsSegments(`${'a'.repeat(152)}€${'a'.repeat(152)}`)).toEqual(gsm(3, 306));
    // Placed where it does not straddle, the same 306 septets fit two parts.
    expect(smsSegments(`${'a'.repeat(151)}€${'a'.repeat(153)}`)).toEqual(gsm(2, 306));
  });

  it('4096 extension characters: 8192 septets, 76 per part', () => {
    expect(smsSegments('€'.repeat(4096))).toEqual(gsm(54, 8192));
  });
});

describe('smsSegments: UCS-2 parts', () => {
  it.each([
    [70, ucs2(1, 70)],
    [71, ucs2(2, 71)],
    [134, ucs2(2, 134)],
    [135, ucs2(3, 135)],
    [4096, ucs2(62, 4096)],
  ])('%i UTF-16 units', (length, expected) => {
    expect(smsSegments('ж'.repeat(length))).toEqual(expected);
  });

  it('one emoji makes the whole message UCS-2 and counts two units', () => {
    expect(smsSegments('😀')).toEqual(ucs2(1, 2));
    expect(smsSegments(`${'a'.repeat(68)}😀`)).toEqual(ucs2(1, 70));
    expect(smsSegments(`${'a'.repeat(69)}😀`)).toEqual(ucs2(2, 71));
    expect(smsSegments(`${'a'.repeat(159)}😀`)).toEqual(ucs2(3, 161));
  });

  it('GSM extension characters count one unit once the message is UCS-2', () => {
    expect(smsSegments('€ж')).toEqual(ucs2(1, 2));
  });

  it('never splits a surrogate pair: one that would straddle a part starts the next one', () => {
    // 66 + emoji: units 67–68 would straddle part 1, so part 1 holds 66 and part 2 the rest.
    expect(smsSegments(`${'a'.repeat(66)}😀${'a'.repeat(65)}`)).toEqual(ucs2(2, 133));
    expect(smsSegments(`${'a'.repeat(66)}😀${'a'.repeat(66)}`)).toEqual(ucs2(3, 134));
    expect(smsSegments(`${'a'.repeat(65)}😀${'a'.repeat(67)}`)).toEqual(ucs2(2, 134));
  });

  it('4096 emoji (the longest text the API takes) are 8192 units, 33 emoji per part', () => {
    expect(smsSegments('😀'.repeat(4096))).toEqual(ucs2(125, 8192));
  });

  it('counts a lone surrogate as one unit (the API refuses it before it gets here)', () => {
    expect(smsSegments('a\ud800')).toEqual(ucs2(1, 2));
  });
});

describe('smsSegments: empty text', () => {
  it('is GSM-7 with no part: nothing to send or pace (the API refuses empty text)', () => {
    expect(smsSegments('')).toEqual(gsm(0, 0));
  });
});
