import { Job } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { Keyspace } from './keys.js';
import { PartitionedQueue } from './partitioned-queue.js';
import type { RedisClient } from './redis.js';

/**
 * What delivery workers keep of finished jobs: nothing, so a message id can be enqueued again
 * (retry of a failed message); the record, not the job, keeps the history. Set on the Worker,
 * not per job: each job's `opts` JSON then stays under Redis's `hash-max-listpack-value` (64 B)
 * and its hash stays a compact listpack (~310 B instead of ~820 B per scheduled message).
 * Jobs carry no BullMQ attempts either: provider retries are driven by the processor from the
 * record's attempt count, and a job that fails unexpectedly (a Redis error) is replaced by the
 * reconciler (a due `scheduled` record at once, a `sending` one after its grace period).
 */
export const DELIVERY_WORKER_KEEP_JOBS = { removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } } as const;

/**
 * Length BullMQ trims each delivery queue's own events stream to (its default is 10,000). Nothing
 * reads that stream (the live feed is the store's), so it only has to stay small: Redis memory
 * then follows the live messages, not the delivery history.
 */
export const DELIVERY_EVENTS_MAX_LEN = 1000;

/**
 * The stored options are only the id and the delay (~58 B of JSON, see DELIVERY_WORKER_KEEP_JOBS):
 * no timestamp, so the delay is measured from the moment BullMQ stamps the job and its due time
 * (timestamp + delay) is `sendAt` or a millisecond after, never before; `attempts: undefined`
 * keeps BullMQ's default `"attempts":0` out of the JSON (a worker reads it as 0).
 */
function jobOptions(id: string, sendAt: number) {
  return { jobId: id, attempts: undefined, delay: Math.max(0, sendAt - Date.now()) };
}

/** The per-partition queues of delivery jobs: one delayed job per message, job id = message id. */
export class DeliveryQueues extends PartitionedQueue<'deliveries'> {
  constructor(keys: Keyspace, connection: RedisClient) {
    super('deliveries', keys, connection, { streams: { events: { maxLen: DELIVERY_EVENTS_MAX_LEN } } });
  }

  /** Adds the job unless one with this id exists already (BullMQ ignores a duplicate id). */
  enqueue(id: string, sendAt: number): Promise<void> {
    return this.add(id, { id }, jobOptions(id, sendAt));
  }

  /** The same, as part of a MULTI that also writes the record. */
  enqueueIn(tx: ChainableCommander, id: string, sendAt: number): void {
    this.addTo(tx, id, { id }, jobOptions(id, sendAt));
  }

  /**
   * Moves the job to a new time. A job that is not delayed any more (waiting or running) is left
   * alone: when it runs it reads the record and re-delays itself to the record's `sendAt`.
   */
  async reschedule(id: string, sendAt: number, now = Date.now()): Promise<void> {
    const job = new Job(this.of(id), this.jobName, { id }, {}, id);
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
}
