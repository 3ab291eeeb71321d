import { MESSAGE_ID_PATTERN } from '@punctual/shared';
import { MessageNotFound } from '../errors.js';

const ID = new RegExp(MESSAGE_ID_PATTERN);

/** A malformed id names no message: 404, like an unknown one. */
export function messageId(id: string): string {
  if (!ID.test(id)) throw new MessageNotFound(id.slice(0, 64));
  return id;
}
