import { createHmac, timingSafeEqual } from 'node:crypto';

/** Constant-time equality; lengths may differ in the open, as the expected one is fixed by the algorithm. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Twilio's signature of a request: base64 HMAC-SHA1, keyed with the Auth Token, of the URL Twilio
 * requested followed by every POST parameter's name and value, sorted by name (a name sent more
 * than once: its distinct values sorted, as Twilio's own library does).
 */
export function twilioSignature(authToken: string, url: string, params: readonly [string, string][]): string {
  const values = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    let set = values.get(name);
    if (!set) values.set(name, (set = new Set()));
    set.add(value);
  }
  let data = url;
  for (const name of [...values.keys()].sort()) {
    for (const value of [...values.get(name)!].sort()) data += name + value;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * Whether `header` (X-Twilio-Signature) signs this request. The URL is tried as given and with its
 * default port added or its port removed, as Twilio's libraries do: Twilio may sign either form.
 */
export function isTwilioSignature(header: string | undefined, authToken: string, url: string, params: readonly [string, string][]): boolean {
  if (!header) return false;
  const given = Buffer.from(header);
  return portVariants(url).some((candidate) => sameBytes(given, Buffer.from(twilioSignature(authToken, candidate, params))));
}

function portVariants(url: string): string[] {
  const match = /^(https?:\/\/[^/?#:]+)(:\d+)?(.*)$/i.exec(url);
  if (!match) return [url];
  const [, origin, port, rest] = match;
  const defaultPort = origin!.toLowerCase().startsWith('https:') ? ':443' : ':80';
  return [`${origin}${rest}`, `${origin}${port ?? defaultPort}${rest}`];
}

/**
 * Whether `header` (X-Hub-Signature-256) is Meta's `sha256=<hex HMAC-SHA256 of the raw body bytes,
 * keyed with the app secret>`: the bytes as received, never a re-serialized body.
 */
export function isMetaSignature(header: string | undefined, appSecret: string, rawBody: Buffer): boolean {
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header ?? '');
  if (!match) return false;
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  return sameBytes(Buffer.from(match[1]!, 'hex'), expected);
}
