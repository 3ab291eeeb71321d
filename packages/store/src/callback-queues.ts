import type { JobsOptions } from 'bullmq';
import type { CallbackEvent, MessageRecord } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import { PartitionedQueue } from './partitioned-queue.js';
import type { RedisClient } from './redis.js';

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

/** The per-partition queues of callback jobs, beside each partition's deliveries. */
export class CallbackQueues extends PartitionedQueue<'callbacks'> {
  private readonly jobOptions: JobsOptions;

  constructor(keys: Keyspace, connection: RedisClient, retentionMs: number) {
    super('callbacks', keys, connection);
    this.jobOptions = callbackJobOptions(retentionMs);
  }

  /**
   * Queues the callback of an event, if the message has a callbackUrl. The job id names the
   * record version, so queueing the same event twice sends it once.
   */
  async notify(event: CallbackEvent, tenant: string, record: MessageRecord): Promise<void> {
    if (!record.callbackUrl) return;
    await this.add(record.id, { event, tenant, record }, { ...this.jobOptions, jobId: `${record.id}-v${record.version}` });
  }

  /**
   * Deletes the jobs (and the records they hold) that finished, or last ran, `graceMs` ago or
   * earlier; returns how many. BullMQ's own age limit only acts when another job finishes.
   */
  async removeOlderThan(graceMs: number): Promise<number> {
    let removed = 0;
    for (const queue of this.all()) {
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
}
