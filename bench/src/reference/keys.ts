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

export const REFERENCE_JOB = { removeOnComplete: true, removeOnFail: true, attempts: 8, backoff: { type: 'exponential', delay: 500 } };

export function referenceQueue(prefix: string, connection: ConnectionOptions): Queue {
  return new Queue('deliveries', { connection, prefix: `{${prefix}}` });
}
