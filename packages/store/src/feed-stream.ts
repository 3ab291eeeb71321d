import type { RedisClient } from './redis.js';
import { MESSAGE_EVENTS, type MessageEventName, type MessageRecord } from '@punctual/shared';
import { parseStored, toRecord } from './record.js';

/** One event of a partition's feed stream, as the transition scripts append it. */
export interface FeedEntry {
  /** The stream entry id, which is the event id. */
  id: string;
  event: MessageEventName;
  tenant: string;
  /** The record right after the event. */
  record: MessageRecord;
}

/** A stream reply entry: id and flat field list. */
export type RawStreamEntry = [id: string, flat: string[]];

const EVENT_NAMES = new Set<string>(MESSAGE_EVENTS);
const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
const MAX_ID_PART = 2n ** 64n - 1n;

/** The entry as an event, or null when it is not a message event (nothing else is written there). */
export function parseFeedEntry(id: string, flat: string[]): FeedEntry | null {
  const fields: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  if (!fields.event || !EVENT_NAMES.has(fields.event) || !fields.tenant || !fields.data) return null;
  try {
    return { id, event: fields.event as MessageEventName, tenant: fields.tenant, record: toRecord(parseStored(fields.data)) };
  } catch {
    return null;
  }
}

export function isStreamId(text: string): boolean {
  const match = STREAM_ID.exec(text);
  return match !== null && BigInt(match[1]!) <= MAX_ID_PART && BigInt(match[2]!) <= MAX_ID_PART;
}

/** A key that sorts as stream ids do, so the hot path compares plain strings. */
export function streamIdOrder(id: string): string {
  const dash = id.indexOf('-');
  return `${id.slice(0, dash).padStart(20, '0')}-${id.slice(dash + 1).padStart(20, '0')}`;
}

/**
 * A resume point: one stream id per partition, joined by `_` (a single partition's is the plain
 * stream id). Null when the text is not one for this many partitions.
 */
export function parseFeedCursor(text: string, partitions: number): string[] | null {
  const ids = text.split('_');
  return ids.length === partitions && ids.every(isStreamId) ? ids : null;
}

export function formatFeedCursor(ids: readonly string[]): string {
  return ids.join('_');
}

/** Id of the newest entry of a stream; `0-0` when it has none yet. */
export async function feedTail(redis: RedisClient, stream: string): Promise<string> {
  const [last] = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}

/** Up to `count` entries strictly after `afterId`, oldest first. */
export async function readFeedAfter(redis: RedisClient, stream: string, afterId: string, count: number): Promise<RawStreamEntry[]> {
  return (await redis.xrange(stream, `(${afterId}`, '+', 'COUNT', count)) as RawStreamEntry[];
}

/**
 * Whether a resume point is still covered by what the stream retains: `trimmed` when entries
 * after it may have been trimmed away (MAXLEN), `unknown` when the stream never had it (it is
 * newer than anything written, or the stream is gone). Trimming only removes the oldest entries,
 * so a resume point older than the first retained entry is treated as a gap (at worst one
 * needless resync, when it was exactly the last entry trimmed).
 */
export async function feedCoverage(redis: RedisClient, stream: string, since: string): Promise<'covered' | 'trimmed' | 'unknown'> {
  const info = await streamInfo(redis, stream);
  const before = (a: string, b: string) => streamIdOrder(a) < streamIdOrder(b);
  if (!info) return since === '0-0' ? 'covered' : 'unknown';
  if (before(info.lastGeneratedId, since)) return 'unknown';
  if (info.maxDeletedId && before(since, info.maxDeletedId)) return 'trimmed';
  if (info.entriesAdded !== null && info.entriesAdded === info.length) return 'covered';
  return before(since, info.firstId ?? info.lastGeneratedId) ? 'trimmed' : 'covered';
}

interface StreamInfo {
  length: number;
  lastGeneratedId: string;
  firstId: string | null;
  /** Redis ≥ 7 only. */
  entriesAdded: number | null;
  maxDeletedId: string | null;
}

async function streamInfo(redis: RedisClient, stream: string): Promise<StreamInfo | null> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('STREAM', stream)) as unknown[];
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return null;
    throw err;
  }
  const info = new Map<string, unknown>();
  for (let i = 0; i < reply.length; i += 2) info.set(String(reply[i]), reply[i + 1]);
  const first = info.get('first-entry') as RawStreamEntry | null | undefined;
  const maxDeleted = info.get('max-deleted-entry-id');
  const entriesAdded = info.get('entries-added');
  return {
    length: Number(info.get('length') ?? 0),
    lastGeneratedId: String(info.get('last-generated-id') ?? '0-0'),
    firstId: first ? first[0] : null,
    entriesAdded: entriesAdded === undefined ? null : Number(entriesAdded),
    maxDeletedId: typeof maxDeleted === 'string' ? maxDeleted : null,
  };
}
