import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import type { Queue } from 'bullmq';
import { Keyspace, Scheduler, type RedisClient } from '@punctual/store';
import { referenceJobOptions, referenceKeys, referenceQueue } from './reference/keys.js';
import { referenceRecord } from './reference/record.js';

/** Writes message `i` due at `sendAt`, as the API would; resolves with its id. */
export type Writer = (sendAt: number) => Promise<string>;

export interface Filler {
  write: Writer;
  close(): Promise<void>;
}

const SAMPLE = { recipient: '5511999999999', message: 'Your appointment is tomorrow at 10:00.', channel: 'sms' as const };

export interface FillOptions {
  /** The message text is the message id, so the fake provider can tell whose call it got. */
  textIsId?: boolean;
  /** Distinct recipients the messages cycle through (default: all to one recipient). */
  recipients?: number;
}

/** What the k-th message of a fill looks like. */
function sampleMessage(k: number, id: string, sendAt: number, { textIsId = false, recipients }: FillOptions) {
  const recipient = recipients ? `55${String(1_000_000_000 + (k % recipients))}` : SAMPLE.recipient;
  return { ...SAMPLE, recipient, ...(textIsId ? { message: id } : {}), sendAt };
}

/** Schedules messages straight through the product's scheduler: the same MULTI POST makes. */
export function productFiller(redisUrl: string, prefix: string, options: FillOptions = {}): Filler {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  const filler = storeFiller(redis, new Keyspace({ prefix, partitions: 1 }), options);
  return {
    write: filler.write,
    async close() {
      await filler.close();
      redis.disconnect();
    },
  };
}

/** The product's write on a connection the caller owns (a single Redis or a Cluster). */
export function storeFiller(client: RedisClient, keyspace: Keyspace, options: FillOptions = {}): Filler {
  const scheduler = Scheduler.create(client, { keyspace, eventsMaxLen: 100_000 });
  let written = 0;
  return {
    async write(sendAt) {
      const now = Date.now();
      const ready = await scheduler;
      const id = ready.store.newMessageId(now);
      const result = await ready.schedule('default', sampleMessage(written++, id, sendAt, options), now, { id });
      if (!result.ok) throw new Error(`not scheduled: ${result.reason}`);
      return id;
    },
    close: async () => (await scheduler).close(),
  };
}

/**
 * Schedules messages the way the reference API does: job, then record HSET and index ZADD in one
 * MULTI. With `textIsId` (the delivery scenarios) the job also carries the recipient and text,
 * which the bare worker sends from; the API's jobs carry the id only, as the product's do.
 */
export function referenceFiller(redisUrl: string, prefix: string, options: FillOptions = {}): Filler {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  const keys = referenceKeys(prefix);
  const queue: Queue = referenceQueue(prefix, redis);
  const newId = monotonicFactory();
  let written = 0;
  return {
    async write(sendAt) {
      const now = Date.now();
      const id = newId(now);
      const input = sampleMessage(written++, id, sendAt, options);
      const data = options.textIsId ? { id, recipient: input.recipient, message: input.message } : { id };
      await queue.add('deliver', data, referenceJobOptions(id, sendAt - now));
      await redis.multi().hset(keys.record(id), referenceRecord(id, input, now)).zadd(keys.index, sendAt, id).exec();
      return id;
    },
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * Writes `sendAts.length` messages with `concurrency` in flight, in order of the array (so a
 * message due earlier is written earlier). Returns the ids and the rate in messages per second.
 */
export async function fill(writer: Writer, sendAts: number[], concurrency = 256, onProgress?: (done: number) => void) {
  const ids = new Array<string>(sendAts.length);
  let next = 0;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, sendAts.length) }, async () => {
      while (next < sendAts.length) {
        const i = next++;
        ids[i] = await writer(sendAts[i]!);
        if (++done % 20_000 === 0) onProgress?.(done);
      }
    }),
  );
  const seconds = Math.max(0.001, (Date.now() - started) / 1000);
  return { ids, perSecond: sendAts.length / seconds };
}
