import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { MessageStore, DeliveryQueues, RedisClient } from '@punctual/store';

export interface ReconcilerDeps {
  redis: RedisClient;
  store: MessageStore;
  deliveries: DeliveryQueues;
  log: Logger;
}

/** How late a due message may be before the reconciler steps in. */
const DUE_GRACE_MS = 2000;
/** How long a message may stay `sending` without a job before it is enqueued again. */
const SENDING_GRACE_MS = 30_000;
const BATCH = 500;

/**
 * Makes the jobs agree with the records, so nothing is lost when a process dies between writing
 * a record and enqueueing its job, or when BullMQ fails to promote a delayed job (#2534, #1656):
 * a due scheduled message with no job is enqueued, one whose job is still delayed is promoted,
 * and a `sending` message whose job vanished is enqueued again. Returns what it repaired.
 */
export async function reconcile({ redis, store, deliveries, log }: ReconcilerDeps, now = Date.now()) {
  let repaired = 0;
  for (const queue of deliveries.all()) {
    const tag = queue.opts.prefix!;
    const due = await store.dueIds(tag, now - DUE_GRACE_MS, BATCH);
    const stuck = await store.sendingIds(tag, now - SENDING_GRACE_MS, BATCH);
    const states = await jobStates(redis, queue, [...due, ...stuck]);
    for (const [i, id] of [...due, ...stuck].entries()) {
      const state = states[i]!;
      if (!state.exists) {
        await deliveries.enqueue(id, now, now);
        log.warn({ messageId: id }, i < due.length ? 'due message had no job: enqueued' : 'sending message lost its job: enqueued again');
        repaired++;
      } else if (state.delayed && i < due.length) {
        await queue.getJob(id).then((job) => job?.promote()).catch(() => {});
        log.warn({ messageId: id }, 'due message still delayed: promoted');
        repaired++;
      }
    }
  }
  return repaired;
}

async function jobStates(redis: RedisClient, queue: Queue, ids: string[]) {
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) {
    pipeline.exists(queue.toKey(id));
    pipeline.zscore(queue.keys.delayed!, id);
  }
  const replies = (await pipeline.exec()) ?? [];
  return ids.map((_, i) => ({ exists: replies[2 * i]?.[1] === 1, delayed: replies[2 * i + 1]?.[1] != null }));
}

/** Runs `reconcile` now and every `intervalMs` until stopped. */
export function startReconciler(deps: ReconcilerDeps, intervalMs: number) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = reconcile(deps)
      .catch((err) => deps.log.warn({ err }, 'reconcile failed; trying again later'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
