import { Queue, type ConnectionOptions } from 'bullmq';

/** The reference's keys: a record hash per message and one index by sendAt, like the product. */
export function referenceKeys(prefix: string) {
  const base = `{${prefix}}`;
  return {
    base,
    record: (id: string) => `${base}:m:${id}`,
    index: `${base}:scheduled`,
  };
}

/**
 * Options of each reference job: the id and the delay only. What to keep of finished jobs is the
 * worker's (REFERENCE_WORKER_KEEP_JOBS), as in the product, so the job's opts JSON stays under
 * `hash-max-listpack-value` and its hash a listpack; `attempts: undefined` keeps BullMQ's default
 * `"attempts":0` out of that JSON. Per-job removeOnComplete/attempts/backoff made every add
 * heavier for the API and every job hash a hashtable.
 */
export function referenceJobOptions(id: string, delay: number) {
  return { jobId: id, delay: Math.max(0, delay), attempts: undefined };
}

export const REFERENCE_WORKER_KEEP_JOBS = { removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } } as const;

/** BullMQ trims a queue's own events stream to 10,000 by default; the product keeps 1,000. */
export const REFERENCE_EVENTS_MAX_LEN = 1000;

export function referenceQueue(prefix: string, connection: ConnectionOptions): Queue {
  return new Queue('deliveries', { connection, prefix: `{${prefix}}`, streams: { events: { maxLen: REFERENCE_EVENTS_MAX_LEN } } });
}
