import { Type, type Static } from '@sinclair/typebox';
import { CHANNELS } from './channels.js';
import { IDEMPOTENCY_KEY_PATTERN } from './tenants.js';
import type { SmsEncoding } from './sms-segments.js';
import { LOCAL_DATE_TIME_PATTERN, TIME_OF_DAY_PATTERN } from './local-time.js';

export const MESSAGE_STATUSES = ['scheduled', 'sending', 'delivered', 'failed', 'canceled'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** What a provider reports after it accepted a message: sent < delivered < read; undelivered and failed are final. */
export const RECEIPT_STATUSES = ['sent', 'delivered', 'read', 'undelivered', 'failed'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];

/** Statuses that have their own list route, and the order each list is read in. */
export const LISTED_STATUSES = {
  scheduled: 'asc',
  delivered: 'desc',
  failed: 'desc',
  canceled: 'desc',
} as const;
export type ListedStatus = keyof typeof LISTED_STATUSES;

/** The encodings an SMS record may carry (see `smsSegments`). */
export const SMS_ENCODINGS: readonly SmsEncoding[] = ['GSM-7', 'UCS-2'];

export const MAX_MESSAGE_LENGTH = 4096;
export const MAX_METADATA_BYTES = 2048;
export const MAX_SCHEDULE_AHEAD_MS = 365 * 24 * 60 * 60 * 1000;

/** ULID: 26 Crockford base-32 characters, time-sortable. */
export const MESSAGE_ID_PATTERN = '^[0-9A-HJKMNP-TV-Z]{26}$';
/** E.164 digits, with or without the leading `+`, kept as sent. */
export const RECIPIENT_PATTERN = '^\\+?[1-9][0-9]{6,14}$';
/** ISO-8601 date-time that names its offset (`Z` or `±hh:mm`). */
export const ISO_WITH_OFFSET_PATTERN =
  '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})$';

/** A string from a fixed list; validates as `enum` so errors name the allowed values. */
export function StringEnum<T extends string>(values: readonly T[], options: { description?: string } = {}) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

export const Channel = StringEnum(CHANNELS, { description: 'Delivery channel' });
export type Channel = Static<typeof Channel>;
export const MessageStatus = StringEnum(MESSAGE_STATUSES);
export const ReceiptStatus = StringEnum(RECEIPT_STATUSES, { description: 'What the provider last reported about the message' });

/** Why a message was canceled: a DELETE (api), or its recipient opted out of the channel (opted_out). */
export const CANCEL_REASONS = ['api', 'opted_out'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

export const MessageId = Type.String({ pattern: MESSAGE_ID_PATTERN, description: 'Message id (ULID)' });
export const Recipient = Type.String({
  pattern: RECIPIENT_PATTERN,
  description: 'E.164 phone number, with or without the leading +',
  examples: ['5511999999999'],
});
/** Text a provider receives: a NUL byte would be cut or refused downstream, so it is a 400 here. */
const NO_NUL_PATTERN = '^[^\\u0000]*$';
/** 1–4096 characters counted as code points (ajv's maxLength), so 4096 emoji fit. */
export const MessageText = Type.String({ minLength: 1, maxLength: MAX_MESSAGE_LENGTH, pattern: NO_NUL_PATTERN });
export const SendAtInput = Type.Union(
  [
    Type.Integer({ minimum: 0, description: 'Epoch milliseconds' }),
    Type.String({ pattern: ISO_WITH_OFFSET_PATTERN, format: 'date-time', description: 'ISO-8601 with offset' }),
  ],
  { description: 'When to deliver: epoch ms or ISO-8601 with offset; past or now = immediately' },
);
/** A request body's send time: also a local date-time without offset, read in the body's `timeZone`. */
export const SendAtBodyInput = Type.Union(
  [...SendAtInput.anyOf, Type.String({ pattern: LOCAL_DATE_TIME_PATTERN, description: 'Local date-time without offset, read in timeZone' })],
  {
    description:
      'When to deliver: epoch ms or ISO-8601 (with an offset, or without one in timeZone); past or now = immediately',
  },
);
/** An IANA zone name (checked against the platform's time-zone data). */
export const TimeZone = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'IANA time zone (e.g. America/New_York) a local sendAt and quietHours are read in; kept on the record',
  examples: ['America/New_York'],
});
export const QuietHoursInput = Type.Object(
  {
    start: Type.String({ pattern: TIME_OF_DAY_PATTERN, description: 'HH:MM, local, inclusive' }),
    end: Type.String({ pattern: TIME_OF_DAY_PATTERN, description: 'HH:MM, local, exclusive' }),
  },
  {
    additionalProperties: false,
    description: 'Daily window (local time in timeZone, may cross midnight) when nothing is sent: a send time inside it moves to its end',
    examples: [{ start: '21:00', end: '08:00' }],
  },
);
export const MAX_METADATA_KEY_LENGTH = 64;
/** `propertyNames` says the key limit: ajv ignores the key schema Type.Record is given. */
export const Metadata = Type.Record(
  Type.String({ maxLength: MAX_METADATA_KEY_LENGTH }),
  Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean(), Type.Null()]),
  {
    maxProperties: 32,
    propertyNames: { maxLength: MAX_METADATA_KEY_LENGTH },
    description: `Small flat object (at most 2 KB as JSON; keys at most ${MAX_METADATA_KEY_LENGTH} characters)`,
  },
);
export const Template = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512, pattern: NO_NUL_PATTERN }),
    language: Type.String({ minLength: 2, maxLength: 15, pattern: '^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$' }),
    variables: Type.Optional(Type.Array(Type.String({ maxLength: 1024, pattern: NO_NUL_PATTERN }), { maxItems: 20 })),
  },
  { additionalProperties: false, description: 'WhatsApp template (whatsapp channel only)' },
);
export type Template = Static<typeof Template>;
export const CallbackUrl = Type.String({
  maxLength: 2048,
  pattern: '^https?://[^\\s]+$',
  description: 'Receives a signed POST when the message is delivered or failed',
});

export const CreateMessageBody = Type.Object(
  {
    recipient: Recipient,
    message: Type.Optional(MessageText),
    template: Type.Optional(Template),
    sendAt: SendAtBodyInput,
    channel: Channel,
    metadata: Type.Optional(Metadata),
    callbackUrl: Type.Optional(CallbackUrl),
    timeZone: Type.Optional(TimeZone),
    quietHours: Type.Optional(QuietHoursInput),
  },
  {
    additionalProperties: false,
    examples: [{ recipient: '5511999999999', message: 'Hello from the API!', sendAt: '2026-12-24T18:00:00-03:00', channel: 'whatsapp' }],
  },
);
export type CreateMessageBody = Static<typeof CreateMessageBody>;

export const CreateMessageHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description: 'Same key and body within 24 h returns the first response again (header Idempotent-Replayed: true)',
    }),
  ),
});

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      pattern: '^(\\*|"?[1-9][0-9]{0,14}"?)$',
      description: 'The version last read (the record\'s `version`, also its ETag): another current version → 412 VERSION_MISMATCH',
    }),
  ),
});

export const UpdateMessageBody = Type.Object(
  {
    recipient: Type.Optional(Recipient),
    message: Type.Optional(MessageText),
    template: Type.Optional(Template),
    sendAt: Type.Optional(SendAtBodyInput),
    channel: Type.Optional(Channel),
    metadata: Type.Optional(Metadata),
    callbackUrl: Type.Optional(CallbackUrl),
    timeZone: Type.Optional(TimeZone),
    quietHours: Type.Optional(Type.Union([QuietHoursInput, Type.Null()], { description: 'A new quiet window, or null to remove it' })),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ message: 'Updated message', sendAt: 1766613600000 }] },
);
export type UpdateMessageBody = Static<typeof UpdateMessageBody>;

const IsoTime = Type.String({ format: 'date-time' });

export const Receipt = Type.Object(
  {
    status: ReceiptStatus,
    at: Type.String({ format: 'date-time', description: "The provider's own time of the report where it gives one, else when it arrived" }),
    errorCode: Type.Optional(Type.String({ description: "The provider's error code (e.g. Twilio 30003), when it gives one" })),
  },
  { description: 'The delivery receipt: what the provider reported after accepting the message; absent until its first report' },
);
export type Receipt = Static<typeof Receipt>;

export const MessageRecord = Type.Object({
  id: MessageId,
  recipient: Type.String(),
  message: Type.Optional(Type.String()),
  template: Type.Optional(Template),
  channel: Channel,
  sendAt: Type.Integer({ description: 'Epoch milliseconds' }),
  status: MessageStatus,
  createdAt: IsoTime,
  updatedAt: IsoTime,
  deliveredAt: Type.Optional(IsoTime),
  failedAt: Type.Optional(IsoTime),
  canceledAt: Type.Optional(IsoTime),
  cancelReason: Type.Optional(StringEnum(CANCEL_REASONS, { description: 'Why it was canceled: api (DELETE) or opted_out (the recipient opted out)' })),
  nextAttemptAt: Type.Optional(Type.String({ format: 'date-time', description: 'When a failed attempt is tried again' })),
  throttledAt: Type.Optional(Type.String({
    format: 'date-time',
    description: 'When the provider first refused this message for its rate (429, or a per-recipient limit) in the current run of refusals; still refused THROTTLE_MAX_MS later, it fails',
  })),
  attempts: Type.Integer({ minimum: 0 }),
  lastError: Type.Optional(Type.String()),
  providerMessageId: Type.Optional(Type.String()),
  receipt: Type.Optional(Receipt),
  metadata: Type.Optional(Metadata),
  callbackUrl: Type.Optional(Type.String()),
  encoding: Type.Optional(StringEnum(SMS_ENCODINGS, {
    description: 'SMS only: GSM-7 when every character is in the GSM 03.38 basic or extension table, else UCS-2',
  })),
  segments: Type.Optional(Type.Integer({
    minimum: 1,
    description: 'SMS only: parts the text is sent (and billed, and paced) in. GSM-7: 160 characters in one, else 153 per part, extension characters (€ [ ] { } | ^ ~ \\ form feed) counting two; UCS-2: 70 UTF-16 code units in one, else 67 per part',
  })),
  batchId: Type.Optional(Type.String({ description: 'The batch (POST /scheduled/batch) the message was created in' })),
  timeZone: Type.Optional(Type.String()),
  quietHours: Type.Optional(QuietHoursInput),
  requestedSendAt: Type.Optional(
    Type.Integer({ description: 'Epoch ms of the time asked for, when quietHours moved sendAt to the end of the window' }),
  ),
  version: Type.Integer({ minimum: 1, description: 'Increases with every change of the record' }),
}, {
  examples: [{
    id: '01KD0Q7Y5R8N3M2X4Z6B9C1D2E',
    recipient: '5511999999999',
    message: 'Hello from the API!',
    channel: 'whatsapp',
    sendAt: 1766610000000,
    status: 'scheduled',
    createdAt: '2026-12-20T12:00:00.000Z',
    updatedAt: '2026-12-20T12:00:00.000Z',
    attempts: 0,
    version: 1,
  }],
});
export type MessageRecord = Static<typeof MessageRecord>;

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    channel: Type.Optional(Channel),
    recipient: Type.Optional(Recipient),
    receipt: Type.Optional(StringEnum(RECEIPT_STATUSES, { description: 'Only messages whose receipt has this status' })),
    from: Type.Optional(SendAtInput),
    to: Type.Optional(SendAtInput),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

/** GET /scheduled also lists one batch's scheduled messages. */
export const ScheduledListQuery = Type.Object(
  {
    ...ListQuery.properties,
    batchId: Type.Optional(Type.String({ pattern: MESSAGE_ID_PATTERN, description: 'Only the messages of this batch' })),
  },
  { additionalProperties: false },
);
export type ScheduledListQuery = Static<typeof ScheduledListQuery>;

/** Routes that take no query parameters refuse unknown ones instead of ignoring them. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

/** Write routes that take no body refuse one with fields instead of ignoring it (no body, `null` or `{}` pass). */
export const NoBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })], {
  description: 'No body (or an empty JSON object)',
});

/** Any text: a malformed id names no message, so it is a 404 like an unknown one, not a 400. */
export const MessageIdParams = Type.Object({ id: Type.String() });

export const MessageEnvelope = Type.Object({ success: Type.Literal(true), data: MessageRecord });
export const CreatedEnvelope = Type.Object({
  success: Type.Literal(true),
  id: MessageId,
  data: MessageRecord,
});
export const DeletedEnvelope = Type.Object({ success: Type.Literal(true), id: MessageId });
export const MessagePage = Type.Object({
  messages: Type.Array(MessageRecord),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type MessagePage = Static<typeof MessagePage>;
