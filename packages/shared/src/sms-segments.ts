export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SmsSegments {
  encoding: SmsEncoding;
  /** Parts the provider bills and paces; 0 only for the empty string. */
  segments: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) of the text, without any padding. */
  units: number;
}

/**
 * GSM 03.38 (3GPP TS 23.038) default alphabet in code order, 0x00–0x7F, eight per group.
 * 0x1B is the escape to the extension table, not a character: it is left out of the set below.
 * 0x09 is the capital `Ç` as the standard draws it (unicode.org maps it to `ç`; we follow ETSI).
 */
const GSM_BASIC_TABLE =
  '@£$¥èéùì' + 'òÇ\nØø\rÅå' + 'Δ_ΦΓΛΩΠΨ' + 'ΣΘΞ\u001BÆæßÉ' +
  ' !"#¤%&\'' + '()*+,-./' + '01234567' + '89:;<=>?' +
  '¡ABCDEFG' + 'HIJKLMNO' + 'PQRSTUVW' + 'XYZÄÖÑÜ§' +
  '¿abcdefg' + 'hijklmno' + 'pqrstuvw' + 'xyzäöñüà';
const GSM_BASIC = new Set([...GSM_BASIC_TABLE].filter((char) => char !== '\u001B'));
/** Extension table: each is sent as ESC + code, two septets. */
const GSM_EXTENSION = new Set(['\f', '^', '{', '}', '\\', '[', '~', ']', '|', '€']);

const LIMITS = {
  'GSM-7': { single: 160, perPart: 153 },
  'UCS-2': { single: 70, perPart: 67 },
} as const;

/**
 * Encoding and part count of an SMS text, as carriers split it. A part never splits an
 * escape sequence (GSM-7) or a surrogate pair (UCS-2): such a character starts the next part,
 * leaving one unit of the previous part unused, so segments can exceed ceil(units / perPart).
 */
export function smsSegments(text: string): SmsSegments {
  const chars = [...text];
  const gsm = chars.every((char) => GSM_BASIC.has(char) || GSM_EXTENSION.has(char));
  const encoding: SmsEncoding = gsm ? 'GSM-7' : 'UCS-2';
  // Width of each character in units: a string char is one code point, so length is 1 or 2.
  const widths = chars.map((char) => (gsm ? (GSM_EXTENSION.has(char) ? 2 : 1) : char.length));
  const units = widths.reduce((sum, width) => sum + width, 0);
  const { single, perPart } = LIMITS[encoding];
  if (units === 0) return { encoding, segments: 0, units };
  if (units <= single) return { encoding, segments: 1, units };
  let segments = 1;
  let used = 0;
  for (const width of widths) {
    if (used + width > perPart) {
      segments += 1;
      used = 0;
    }
    used += width;
  }
  return { encoding, segments, units };
}
