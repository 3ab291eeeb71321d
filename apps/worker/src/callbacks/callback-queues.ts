import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { CALLBACK_JOB_NAME, QUEUE_NAMES, type CallbackEvent, type CallbackJobData, type MessageRecord } from '@punctual/shared';
import type { Keyspace } from '@punctual/store';

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

/** The per-partition BullMQ queues of callback jobs, beside each partition's deliveries. */
export class CallbackQueues {
  private readonly queues: Queue<CallbackJobData>[];

  constructor(
    private readonly keys: Keyspace,
    connection: ConnectionOptions,
  ) {
    this.queues = keys.allTags().map((prefix) => new Queue<CallbackJobData>(QUEUE_NAMES.callbacks, { connection, prefix }));
  }

  /**
   * Queues the callback of a final state, if the message has a callbackUrl. The job id names the
   * record version, so queueing the same event twice sends it once.
   */
  async notify(event: CallbackEvent, record: MessageRecord, tenant: string): Promise<void> {
    if (!record.callbackUrl) return;
    const queue = this.queues[this.keys.partitionOf(record.id)]!;
    await queue.add(CALLBACK_JOB_NAME, { event, record, tenant }, { ...CALLBACK_JOB_OPTIONS, jobId: `${record.id}-v${record.version}` });
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
