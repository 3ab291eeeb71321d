import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { CALLBACK_JOB_NAME, QUEUE_NAMES, type CallbackEvent, type CallbackJobData, type MessageRecord } from '@punctual/shared';
import type { Keyspace } from '@punctual/store';

const DAY_S = 24 * 3600;

/**
 * Retries with exponential backoff and full jitter from 1 s: 15 attempts span about 4.5 hours on
 * average. Finished jobs are kept a day (failed ones a week) so the job id keeps deduplicating a
 * callback that a re-run delivery job queues again, never longer than the record's retention:
 * a job holds a copy of the record.
 */
export function callbackJobOptions(retentionMs: number): JobsOptions {
  const retentionS = Math.max(1, Math.floor(retentionMs / 1000));
  return {
    attempts: 15,
    backoff: { type: 'exponential', delay: 1000, jitter: 1 },
    removeOnComplete: { age: Math.min(DAY_S, retentionS), count: 10_000 },
    removeOnFail: { age: Math.min(7 * DAY_S, retentionS), count: 10_000 },
  };
}

/**
 * Where old callback jobs can sit: finished, or delayed between retries (by their last attempt;
 * BullMQ looks at the soonest CLEAN_BATCH of them). `active` ones finish on their own.
 */
const CLEANED_STATES = ['completed', 'failed', 'delayed'] as const;

/** Jobs removed per Redis call: each call is one script, so it stays short. */
const CLEAN_BATCH = 1000;

/** The per-partition BullMQ queues of callback jobs, beside each partition's deliveries. */
export class CallbackQueues {
  private readonly queues: Queue<CallbackJobData>[];
  private readonly jobOptions: JobsOptions;

  constructor(
    private readonly keys: Keyspace,
    connection: ConnectionOptions,
    retentionMs: number,
  ) {
    this.queues = keys.allTags().map((prefix) => new Queue<CallbackJobData>(QUEUE_NAMES.callbacks, { connection, prefix }));
    this.jobOptions = callbackJobOptions(retentionMs);
  }

  /**
   * Queues the callback of a final state, if the message has a callbackUrl. The job id names the
   * record version, so queueing the same event twice sends it once.
   */
  async notify(event: CallbackEvent, record: MessageRecord, tenant: string): Promise<void> {
    if (!record.callbackUrl) return;
    const queue = this.queues[this.keys.partitionOf(record.id)]!;
    await queue.add(CALLBACK_JOB_NAME, { event, record, tenant }, { ...this.jobOptions, jobId: `${record.id}-v${record.version}` });
  }

  /**
   * Deletes the jobs (and the records they hold) that finished, or last ran, `graceMs` ago or
   * earlier; returns how many. BullMQ's own age limit only acts when another job finishes.
   */
  async removeOlderThan(graceMs: number): Promise<number> {
    let removed = 0;
    for (const queue of this.queues) {
      for (const state of CLEANED_STATES) {
        for (;;) {
          const batch = (await queue.clean(graceMs, CLEAN_BATCH, state)).length;
          removed += batch;
          if (batch < CLEAN_BATCH) break;
        }
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
