import type { Logger } from 'pino';
import { jobStates, type DeliveryQueues, type Maintenance, type Pacer, type RedisClient } from '@punctual/store';
import { runPeriodically } from './periodic.js';

export interface ReconcilerDeps {
  redis: RedisClient;
  maintenance: Maintenance;
  deliveries: DeliveryQueues;
  /** Knows the jobs pacing sent back to wait for their slot: those are delayed on purpose. */
  pacer?: Pacer;
  log: Logger;
}

/** How late a due message may be before the reconciler steps in. */
const DUE_GRACE_MS = 2000;
/** How long a message may stay `sending` without a job before it is enqueued again. */
const SENDING_GRACE_MS = 30_000;
const BATCH = 500;

/**
 * Makes the jobs agree with the records, so nothing is lost when BullMQ fails to promote a
 * delayed job (#2534, #1656) or a job vanishes (a Redis error failed it, a retry's enqueue was
 * lost): a due scheduled message with no job is enqueued, one whose job is still delayed is
 * promoted (unless pacing holds it back for its slot), and a `sending` message whose job vanished
 * is enqueued again. Returns what it repaired.
 */
export async function reconcile({ redis, maintenance, deliveries, pacer, log }: ReconcilerDeps, now = Date.now()) {
  let repaired = 0;
  for (const queue of deliveries.all()) {
    const tag = queue.opts.prefix!;
    const due = await maintenance.dueIds(tag, now - DUE_GRACE_MS, BATCH);
    const stuck = await maintenance.sendingIds(tag, now - SENDING_GRACE_MS, BATCH);
    const ids = [...due, ...stuck];
    const states = await jobStates(redis, queue, ids);
    const delayedDue = ids.filter((_, i) => i < due.length && states[i]!.delayed);
    const paced = new Set((await pacer?.held(delayedDue))?.flatMap((held, i) => (held ? [delayedDue[i]!] : [])));
    for (const [i, id] of ids.entries()) {
      const state = states[i]!;
      if (paced.has(id)) continue;
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

/** Runs `reconcile` now and every `intervalMs` until stopped. */
export function startReconciler(deps: ReconcilerDeps, intervalMs: number) {
  return runPeriodically(() => reconcile(deps), intervalMs, (err) => deps.log.warn({ err }, 'reconcile failed; trying again later'));
}
