import {
  MAX_METADATA_BYTES,
  MESSAGE_ID_PATTERN,
  parseSendAt,
  type CreateMessageBody,
  type ListQuery,
  type MessageRecord,
  type ScheduledListQuery,
  type UpdateMessageBody,
} from '@punctual/shared';
import { decodeCursor, type ListOptions, type MessagePatch, type NewMessage } from '@punctual/store';
import { BOTH_CONTENTS, InvalidCursor, InvalidField, NO_CONTENT, TEMPLATE_CHANNEL } from './errors.js';
import { askedTime, checkTimeRules, outOfQuietHours, sendTimePatch } from './send-time.js';

/**
 * Requests as the store takes them: what the JSON schemas cannot say (times, message or template,
 * sizes, ids, cursors) is checked here, and a refusal is the 4xx the route answers.
 */

const ID = new RegExp(MESSAGE_ID_PATTERN);

/** A message's or a batch's id (they share a shape); a malformed one names nothing: `NotFound`, a 404 like an unknown one. */
export function wellFormedId(id: string, NotFound: new (id: string) => Error): string {
  if (!ID.test(id)) throw new NotFound(id.slice(0, 64));
  return id;
}

/** The store's list options from a validated query string. */
export function listOptions(query: ListQuery | ScheduledListQuery): ListOptions {
  const options: ListOptions = { limit: query.limit ?? 100 };
  if ('batchId' in query && query.batchId !== undefined) {
    // a batch's list is narrowed by checking each record's channel; a recipient has a list of its own
    if (query.recipient) throw new InvalidField('/batchId', 'cannot be combined with recipient');
    options.batchId = query.batchId;
  }
  if (query.cursor !== undefined) {
    const cursor = decodeCursor(query.cursor);
    if (!cursor) throw new InvalidCursor();
    options.cursor = cursor;
  }
  if (query.channel) options.channel = query.channel;
  if (query.recipient) options.recipient = query.recipient;
  if (query.receipt) options.receipt = query.receipt;
  for (const bound of ['from', 'to'] as const) {
    const value = query[bound];
    if (value === undefined) continue;
    const ms = parseSendAt(value);
    if (ms === null) throw new InvalidField(`/${bound}`, 'is not a valid time');
    options[bound] = ms;
  }
  return options;
}

/** Rules the JSON schema cannot say: times (local ones, quiet hours), message or template, sizes. */
export function toNewMessage(body: CreateMessageBody, now: number): NewMessage {
  const rules = { timeZone: body.timeZone, quietHours: body.quietHours };
  checkTimeRules(rules);
  const { sendAt, requestedSendAt } = outOfQuietHours(askedTime(body.sendAt, body.timeZone, now), rules, now);
  const message: NewMessage = {
    recipient: body.recipient,
    channel: body.channel,
    sendAt,
  };
  if (body.message !== undefined) message.message = body.message;
  if (body.template !== undefined) message.template = body.template;
  if (body.metadata !== undefined) message.metadata = body.metadata;
  if (body.callbackUrl !== undefined) message.callbackUrl = body.callbackUrl;
  if (body.timeZone !== undefined) message.timeZone = body.timeZone;
  if (body.quietHours !== undefined) message.quietHours = body.quietHours;
  if (requestedSendAt !== undefined) message.requestedSendAt = requestedSendAt;
  checkContent(message);
  return message;
}

/**
 * The patch a PUT applies: a new message text replaces a template and the other way round. What
 * depends on the stored message (a template on a message moved to SMS) is checked by the update
 * script against the record it changes, atomically: see `contentRefusal` (errors.ts). A new time, zone or
 * window is worked out with `current`, the record as read (see send-time.ts `needsStoredRules`).
 */
export function toPatch(body: UpdateMessageBody, now: number, current?: MessageRecord): MessagePatch {
  const patch: MessagePatch = { ...body, sendAt: undefined };
  if (body.sendAt !== undefined || body.timeZone !== undefined || body.quietHours !== undefined) Object.assign(patch, sendTimePatch(body, current, now));
  if (body.message !== undefined && body.template === undefined) patch.template = null;
  if (body.template !== undefined && body.message === undefined) patch.message = null;
  if (body.message !== undefined && body.template !== undefined) throw BOTH_CONTENTS();
  if (body.template !== undefined && body.channel !== undefined && body.channel !== 'whatsapp') throw TEMPLATE_CHANNEL();
  checkSizes(patch);
  return patch;
}

function checkContent(message: NewMessage): void {
  if (message.message !== undefined && message.template !== undefined) throw BOTH_CONTENTS();
  if (message.message === undefined && message.template === undefined) throw NO_CONTENT();
  if (message.template !== undefined && message.channel !== 'whatsapp') throw TEMPLATE_CHANNEL();
  checkSizes(message);
}

function checkSizes(message: MessagePatch): void {
  if (message.metadata && Buffer.byteLength(JSON.stringify(message.metadata)) > MAX_METADATA_BYTES) {
    throw new InvalidField('/metadata', `must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
  }
  if (typeof message.callbackUrl === 'string' && !isHttpUrl(message.callbackUrl)) {
    throw new InvalidField('/callbackUrl', 'must be an http or https URL');
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
