import {
  MAX_METADATA_BYTES,
  isTooFarAhead,
  parseSendAt,
  type CreateMessageBody,
  type MessageRecord,
  type UpdateMessageBody,
} from '@punctual/shared';
import type { MessagePatch, NewMessage } from '@punctual/store';
import { InvalidField } from './errors.js';

/** Rules the JSON schema cannot say: times, message or template, sizes. */
export function toNewMessage(body: CreateMessageBody, now: number): NewMessage {
  const message: NewMessage = {
    recipient: body.recipient,
    channel: body.channel,
    sendAt: sendAtOf(body.sendAt, now),
  };
  if (body.message !== undefined) message.message = body.message;
  if (body.template !== undefined) message.template = body.template;
  if (body.metadata !== undefined) message.metadata = body.metadata;
  if (body.callbackUrl !== undefined) message.callbackUrl = body.callbackUrl;
  checkContent(message);
  return message;
}

/** The patch a PUT applies, checked against the message it changes. */
export function toPatch(body: UpdateMessageBody, current: MessageRecord, now: number): MessagePatch {
  const patch: MessagePatch = { ...body, sendAt: body.sendAt === undefined ? undefined : sendAtOf(body.sendAt, now) };
  if (body.message !== undefined && body.template === undefined) patch.template = null;
  if (body.template !== undefined && body.message === undefined) patch.message = null;
  const merged = { ...current, ...patch } as NewMessage & Record<string, unknown>;
  for (const [field, value] of Object.entries(patch)) if (value === null) delete merged[field];
  checkContent(merged);
  return patch;
}

function sendAtOf(value: number | string, now: number): number {
  const sendAt = parseSendAt(value);
  if (sendAt === null) throw new InvalidField('/sendAt', 'is not a valid time');
  if (isTooFarAhead(sendAt, now)) throw new InvalidField('/sendAt', 'must be at most one year ahead');
  return sendAt;
}

function checkContent(message: NewMessage): void {
  if (message.message !== undefined && message.template !== undefined) {
    throw new InvalidField('/template', 'cannot be sent together with message');
  }
  if (message.message === undefined && message.template === undefined) {
    throw new InvalidField('/message', 'is required (or a template on the whatsapp channel)');
  }
  if (message.template !== undefined && message.channel !== 'whatsapp') {
    throw new InvalidField('/template', 'is only available on the whatsapp channel');
  }
  if (message.metadata && Buffer.byteLength(JSON.stringify(message.metadata)) > MAX_METADATA_BYTES) {
    throw new InvalidField('/metadata', `must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
  }
  if (message.callbackUrl !== undefined && !isHttpUrl(message.callbackUrl)) {
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
