import { Job, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { DELIVERY_JOB_NAME, QUEUE_NAMES, type DeliveryJobData } from '@punctual/shared';
import type { Keyspace } from './keys.js';

/**
 * Job options of every delivery job. Jobs are removed when they finish so a message id can be
 * enqueued again (retry of a failed message); the record, not the job, keeps the history.
 * BullMQ's own attempts only cover unexpected errors (Redis hiccups); provider retries are
 * driven by the processor from the record's attempt count.
 */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
};

/**
 * Length BullMQ trims each delivery queue's own events stream to (its default is 10,000). Nothing
 * reads that stream (the live feed is the store's), so it only has to stay small: Redis memory
 * then follows the live messages, not the delivery history.
 */
export const DELIVERY_EVENTS_MAX_LEN = 1000;

/** The per-partition BullMQ queues of delivery jobs, job id = message id. */
export class DeliveryQueues {
  private readonly queues: Queue<DeliveryJobData>[];

  constructor(
    private readonly keys: Keyspace,
    connection: ConnectionOptions,
  ) {
    this.queues = keys.allTags().map(
      (prefix) => new Queue<DeliveryJobData>(QUEUE_NAMES.deliveries, {
          connection,
          prefix,
          streams: { events: { maxLen: DELIVERY_EVENTS_MAX_LEN } },
        }),
    );
  }

  all(): readonly Queue<DeliveryJobData>[] {
    return this.queues;
  }

  of(id: string): Queue<DeliveryJobData> {
    return this.queues[this.keys.partitionOf(id)]!;
  }

  /** Jobs per state, summed over the partitions' queues. */
  async counts(): Promise<{ delayed: number; waiting: number; active: number; failed: number }> {
    const total = { delayed: 0, waiting: 0, active: 0, failed: 0 };
    const perQueue = await Promise.all(this.queues.map((q) => q.getJobCounts('delayed', 'waiting', 'active', 'failed')));
    for (const counts of perQueue) for (const state of Object.keys(total) as (keyof typeof total)[]) total[state] += counts[state] ?? 0;
    return total;
  }

  /**
   * Adds the job unless one with this id exists already (BullMQ ignores a duplicate id). The
   * job's timestamp is `now`, so BullMQ's due time (timestamp + delay) is exactly `sendAt`.
   */
  async enqueue(id: string, sendAt: number, now = Date.now()): Promise<void> {
    await this.of(id).add(DELIVERY_JOB_NAME, { id }, {
      ...DELIVERY_JOB_OPTIONS,
      jobId: id,
      timestamp: now,
      delay: Math.max(0, sendAt - now),
    });
  }

  /**
   * Moves the job to a new time. A job that is not delayed any more (waiting or running) is left
   * alone: when it runs it reads the record and re-delays itself to the record's `sendAt`.
   */
  async reschedule(id: string, sendAt: number, now = Date.now()): Promise<void> {
    const job = await Job.fromId<DeliveryJobData>(this.of(id), id);
    if (!job) return this.enqueue(id, sendAt, now);
    const delay = sendAt - now;
    try {
      if (delay > 0) await job.changeDelay(delay);
      else await job.promote();
    } catch {
      // not in the delayed set any more: the processor re-reads the record
    }
  }

  /** Removes the job of a canceled message; a running one finds the record canceled. */
  async discard(id: string): Promise<void> {
    try {
      await this.of(id).remove(id);
    } catch {
      // locked by a worker right now: the claim refuses a canceled message
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
