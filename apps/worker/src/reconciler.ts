import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { runPeriodically } from './periodic.js';
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
        await deliveries.enqueue(id, now);
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

/**
 * Corrects the per-tenant counters of scheduled messages (the MAX_SCHEDULED_PER_TENANT cap),
 * which a process dying between a transition and its counter update leaves off by one. A
 * difference is corrected only when the previous pass saw the same one, so operations in flight
 * during a count are never mistaken for drift; the correction is relative, so none is lost.
 * `previous` carries each tenant's difference from one pass to the next.
 */
export async function repairScheduledCounts(store: MessageStore, previous: Map<string, number>, log: Logger) {
  let corrected = 0;
  for (const tenant of await store.countedTenants()) {
    const drift = await store.scheduledDrift(tenant);
    const before = previous.get(tenant);
    previous.delete(tenant);
    if (drift === null || drift === 0) continue;
    if (drift !== before) {
      previous.set(tenant, drift);
      continue;
    }
    await store.correctScheduled(tenant, drift);
    log.warn({ tenant, drift }, 'scheduled-message counter was off: corrected');
    corrected++;
  }
  return corrected;
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

/** How often the scheduled-message counters are checked (a SCAN and a ZCARD per partition each). */
const COUNTER_CHECK_MS = 60_000;

/** Runs `reconcile` now and every `intervalMs` until stopped, and the counter repair every minute. */
export function startReconciler(deps: ReconcilerDeps, intervalMs: number) {
  let countersCheckedAt = 0;
  const drifts = new Map<string, number>();
  const pass = async () => {
    await reconcile(deps);
    if (Date.now() - countersCheckedAt >= COUNTER_CHECK_MS) {
      countersCheckedAt = Date.now();
      await repairScheduledCounts(deps.store, drifts, deps.log);
    }
  };
  return runPeriodically(pass, intervalMs, (err) => deps.log.warn({ err }, 'reconcile failed; trying again later'));
}
