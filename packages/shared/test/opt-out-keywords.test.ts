import { describe, expect, it } from 'vitest';
import { OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, inboundKeyword, recipientDigits } from '../src/opt-outs.js';

describe('inboundKeyword', () => {
  it('knows the contract keywords, in any case, with surrounding whitespace', () => {
    expect([...OPT_OUT_KEYWORDS]).toEqual(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE']);
    expect([...OPT_IN_KEYWORDS]).toEqual(['START', 'UNSTOP', 'YES', 'OPTIN']);
    for (const word of OPT_OUT_KEYWORDS) {
      for (const spelling of [word, word.toLowerCase(), word[0] + word.slice(1).toLowerCase(), `  ${word}\n`, `\t${word.toLowerCase()} `]) {
        expect(inboundKeyword(spelling), spelling).toBe('opt_out');
      }
    }
    for (const word of OPT_IN_KEYWORDS) {
      for (const spelling of [word, word.toLowerCase(), ` ${word[0]!.toLowerCase()}${word.slice(1)}\r\n`]) {
        expect(inboundKeyword(spelling), spelling).toBe('opt_in');
      }
    }
    expect(inboundKeyword('\u00a0Stop\u00a0')).toBe('opt_out');
  });

  it('takes only a whole body that is one keyword', () => {
    for (const text of ['', '   ', 'stop it', 'STOP.', 'please stop', 'STOP STOP', 'S TOP', 'stopp', 'yes please', 'ok', 'STOP!', '"STOP"', 'optout1']) {
      expect(inboundKeyword(text), text).toBeNull();
    }
  });

  it('folds no Unicode look-alike into a keyword', () => {
    // U+017F LATIN SMALL LETTER LONG S upper-cases to S; U+0130 lower-cases to i̇
    for (const text of ['ſtop', 'ſtart', 'QUİT', 'ＳＴＯＰ', 'stop\u200b']) expect(inboundKeyword(text), text).toBeNull();
  });

  it('answers fast for a huge body', () => {
    expect(inboundKeyword(`${' '.repeat(100_000)}STOP${'x'.repeat(1_000_000)}`)).toBeNull();
    expect(inboundKeyword(`${' '.repeat(100_000)}STOP${' '.repeat(100_000)}`)).toBe('opt_out');
  });
});

describe('recipientDigits', () => {
  it('reads every spelling of one number as the same digits', () => {
    for (const spelling of ['+5511999999999', '5511999999999', 'whatsapp:+5511999999999', 'WhatsApp:5511999999999', ' +5511999999999 ']) {
      expect(recipientDigits(spelling), spelling).toBe('5511999999999');
    }
  });

  it('refuses what is no E.164 number', () => {
    for (const address of ['', '+', '12345', '0511999999999', '+1234567890123456', 'MyBrand', '++5511999999999', '5511 9999 9999', 'whatsapp:', 'sms:+5511999999999']) {
      expect(recipientDigits(address), address).toBeNull();
    }
  });
});
