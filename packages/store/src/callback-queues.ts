import type { JobsOptions } from 'bullmq';
import type { CallbackEvent, MessageRecord } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import { PartitionedQueue } from './partitioned-queue.js';
import type { RedisClient } from './redis.js';

/**
 * Retries with exponential backoff and full jitter from 1 s: 15 attempts span about 4.5 hours on
 * average. Finished jobs are kept a day so the job id keeps deduplicating a callback that a
 * re-run delivery job queues again.
 */
export const CALLBACK_JOB_OPTIONS: JobsOptions = {
  attempts: 15,
  backoff: { type: 'exponential', delay: 1000, jitter: 1 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

/** The per-partition queues of callback jobs, beside each partition's deliveries. */
export class CallbackQueues extends PartitionedQueue<'callbacks'> {
  constructor(keys: Keyspace, connection: RedisClient) {
    super('callbacks', keys, connection);
  }

  /**
   * Queues the callback of an event, if the message has a callbackUrl. The job id names the
   * record version, so queueing the same event twice sends it once.
   */
  async notify(event: CallbackEvent, tenant: string, record: MessageRecord): Promise<void> {
    if (!record.callbackUrl) return;
    await this.add(record.id, { event, tenant, record }, { ...CALLBACK_JOB_OPTIONS, jobId: `${record.id}-v${record.version}` });
  }
}
