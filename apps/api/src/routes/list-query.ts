import { parseSendAt, type ListQuery, type ScheduledListQuery } from '@punctual/shared';
import { decodeCursor, type ListOptions } from '@punctual/store';
import { InvalidCursor, InvalidField } from '../errors.js';

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
