import { Job, Queue, type JobsOptions, type QueueOptions } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import { QUEUES, type QueueName, type QueuePayloads } from '@punctual/shared';
import type { Keyspace } from './keys.js';
import type { RedisClient } from './redis.js';

export type JobCounts = { delayed: number; waiting: number; active: number; failed: number };

/**
 * One BullMQ queue per partition, each under its partition's hash tag, so a message's jobs live in
 * the slot of its record and can be written in the same MULTI. A job goes to the partition of the
 * message id it names.
 */
export class PartitionedQueue<N extends QueueName> {
  private readonly queues: Queue<QueuePayloads[N]>[];
  readonly jobName: string;

  constructor(
    name: N,
    private readonly keys: Keyspace,
    connection: RedisClient,
    options: Omit<QueueOptions, 'connection' | 'prefix'> = {},
  ) {
    this.jobName = QUEUES[name].job;
    this.queues = keys.allTags().map((prefix) => new Queue<QueuePayloads[N]>(QUEUES[name].name, { ...options, connection, prefix }));
  }

  /** Resolves once every partition's queue has loaded its scripts on the connection. */
  async ready(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.waitUntilReady()));
  }

  all(): readonly Queue<QueuePayloads[N]>[] {
    return this.queues;
  }

  /** The queue of the partition a message id belongs to. */
  of(messageId: string): Queue<QueuePayloads[N]> {
    return this.queues[this.keys.partitionOf(messageId)]!;
  }

  /** Adds a job on its own (BullMQ ignores an id that exists). */
  async add(messageId: string, data: QueuePayloads[N], opts: JobsOptions): Promise<void> {
    await this.of(messageId).add(this.jobName as never, data as never, opts);
  }

  /**
   * Appends the job's creation to a MULTI of the message's partition (see `jobTransaction`): the
   * job is written in the same transaction as the record, or not at all, as `Queue.addBulk` does.
   */
  addTo(tx: ChainableCommander, messageId: string, data: QueuePayloads[N], opts: JobsOptions): void {
    void new Job(this.of(messageId), this.jobName, data, opts, opts.jobId).addJob(tx as never).catch(() => {});
  }

  /** Jobs per state, summed over the partitions. */
  async counts(): Promise<JobCounts> {
    const total: JobCounts = { delayed: 0, waiting: 0, active: 0, failed: 0 };
    const perQueue = await Promise.all(this.queues.map((q) => q.getJobCounts('delayed', 'waiting', 'active', 'failed')));
    for (const counts of perQueue) for (const state of Object.keys(total) as (keyof JobCounts)[]) total[state] += counts[state] ?? 0;
    return total;
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
