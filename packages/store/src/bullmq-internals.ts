import type { QueueBase } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './redis.js';

/**
 * The one place that reads BullMQ's private key layout (checked against bullmq 5.x): the due
 * alarm and the reconciler ask here rather than knowing it themselves.
 */

type DefinedScripts = { scriptsSet: Record<string, { lua: string; numberOfKeys: number | null }> };

/**
 * Defines on `target` the scripts BullMQ adds jobs with (delayed, standard, prioritized), as
 * BullMQ defined them on `source`, a connection one of its queues is ready on.
 */
export function defineJobCreation(source: RedisClient, target: RedisClient): void {
  for (const [name, script] of Object.entries((source as unknown as DefinedScripts).scriptsSet)) {
    if (!/^add(Delayed|Standard|Prioritized)Job:/.test(name) || name in target) continue;
    target.defineCommand(name, { lua: script.lua, numberOfKeys: script.numberOfKeys ?? undefined });
  }
}

/**
 * A MULTI BullMQ can add jobs to: BullMQ calls its scripts through `runCommand`, which its own
 * client adds to the transactions it makes.
 */
export function jobTransaction(connection: RedisClient): ChainableCommander {
  const tx = connection.multi() as ChainableCommander & Record<string, (...args: unknown[]) => unknown>;
  tx.runCommand = (name: unknown, args: unknown) => {
    tx[name as string]!(args);
    return tx;
  };
  return tx;
}

/** BullMQ scores a delayed job as its due time · 4096 + a counter. */
const DELAYED_SCORE_FACTOR = 0x1000;

/** The queue's next delayed job and when it is due, or null when none is delayed. */
export async function nextDelayedJob(redis: RedisClient, queue: QueueBase): Promise<{ id: string; dueAt: number } | null> {
  const head = await redis.zrange(queue.keys.delayed!, 0, 0, 'WITHSCORES');
  if (head.length < 2) return null;
  return { id: head[0]!, dueAt: Math.floor(Number(head[1]) / DELAYED_SCORE_FACTOR) };
}

/** Wakes the queue's idle workers (blocked on its marker) to promote what is due. */
export async function wakeWorkers(redis: RedisClient, queue: QueueBase): Promise<void> {
  await redis.zadd(queue.keys.marker!, 0, '0');
}

/**
 * Gives up a job's lock for its worker: BullMQ's next stalled check moves the job, still active,
 * back to waiting for another worker. Only for a worker known to be dead. Returns whether a lock
 * was there.
 */
export async function releaseJobLock(redis: RedisClient, queue: QueueBase, jobId: string): Promise<boolean> {
  return (await redis.del(`${queue.toKey(jobId)}:lock`)) === 1;
}

/** For each job id: whether the job exists, and whether it is waiting in the delayed set. */
export async function jobStates(redis: RedisClient, queue: QueueBase, ids: string[]): Promise<{ exists: boolean; delayed: boolean }[]> {
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) {
    pipeline.exists(queue.toKey(id));
    pipeline.zscore(queue.keys.delayed!, id);
  }
  const replies = (await pipeline.exec()) ?? [];
  return ids.map((_, i) => ({ exists: replies[2 * i]?.[1] === 1, delayed: replies[2 * i + 1]?.[1] != null }));
}
