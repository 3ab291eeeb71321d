import { Type, type Static } from '@sinclair/typebox';
import { Channel, Recipient, StringEnum } from './message.js';

/** Whole-body replies that opt the sender out of a channel (Twilio's defaults, contract §11). */
export const OPT_OUT_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE'] as const;
/** Whole-body replies that opt the sender back in. */
export const OPT_IN_KEYWORDS = ['START', 'UNSTOP', 'YES', 'OPTIN'] as const;

export type InboundKeyword = 'opt_out' | 'opt_in';

const OUT = new Set<string>(OPT_OUT_KEYWORDS);
const IN = new Set<string>(OPT_IN_KEYWORDS);

/**
 * What an inbound message body asks for: the whole body, trimmed, in any case, is one keyword, or
 * it asks for nothing ("stop it", "Stop." and "STOP please" are conversation, not keywords). Only
 * ASCII letters are upper-cased, so no Unicode case folding turns another word into one ("ſtop").
 */
export function inboundKeyword(text: string): InboundKeyword | null {
  const body = text.trim();
  if (body.length > 16 || !/^[A-Za-z]+$/.test(body)) return null;
  const word = body.toUpperCase();
  if (OUT.has(word)) return 'opt_out';
  if (IN.has(word)) return 'opt_in';
  return null;
}

const E164_DIGITS = /^[1-9][0-9]{6,14}$/;

/**
 * The digits that identify a recipient, whatever the spelling: `+5511…`, `5511…`, Twilio's
 * `whatsapp:+5511…`. Null when it is no E.164 number (a short code, an alphanumeric sender).
 */
export function recipientDigits(address: string): string | null {
  const digits = address.trim().replace(/^whatsapp:/i, '').replace(/^\+/, '');
  return E164_DIGITS.test(digits) ? digits : null;
}

/** Where a suppression comes from: the tenant's own list (api), a keyword reply (inbound), a provider refusal (provider). */
export const SUPPRESSION_SOURCES = ['api', 'inbound', 'provider'] as const;
export type SuppressionSource = (typeof SUPPRESSION_SOURCES)[number];

/** `tenant`: the tenant's own list; `deployment`: the recipient opted out of the channel for every tenant. */
export const SUPPRESSION_SCOPES = ['tenant', 'deployment'] as const;
export type SuppressionScope = (typeof SUPPRESSION_SCOPES)[number];

export const Suppression = Type.Object(
  {
    channel: Channel,
    recipient: Type.String({ description: 'E.164 digits without the leading +' }),
    scope: StringEnum(SUPPRESSION_SCOPES, {
      description: "tenant: on this tenant's own list; deployment: the recipient opted out of the channel for every tenant (only they can opt back in)",
    }),
    source: StringEnum(SUPPRESSION_SOURCES, {
      description: "api: this tenant's PUT; inbound: the recipient replied STOP (or another opt-out keyword); provider: the provider refused the recipient as unsubscribed (Twilio 21610)",
    }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { examples: [{ channel: 'sms', recipient: '5511999999999', scope: 'tenant', source: 'api', createdAt: '2026-12-20T12:00:00.000Z' }] },
);
export type Suppression = Static<typeof Suppression>;

export const SuppressionParams = Type.Object({ channel: Channel, recipient: Recipient });
export type SuppressionParams = Static<typeof SuppressionParams>;

export const SuppressionEnvelope = Type.Object({ success: Type.Literal(true), data: Suppression });
export const SuppressionRemoved = Type.Object({ success: Type.Literal(true), channel: Channel, recipient: Type.String() });

export const SuppressionListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type SuppressionListQuery = Static<typeof SuppressionListQuery>;

export const SuppressionPage = Type.Object({
  suppressions: Type.Array(Suppression),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type SuppressionPage = Static<typeof SuppressionPage>;
