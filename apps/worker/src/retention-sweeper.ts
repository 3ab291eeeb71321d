import type { Logger } from 'pino';
import type { CallbackQueues, Keyspace, Maintenance } from '@punctual/store';
import { runPeriodically } from './periodic.js';

const BATCH = 500;

export interface RetentionDeps {
  maintenance: Maintenance;
  keys: Keyspace;
  callbacks: CallbackQueues;
  /** RETENTION_DAYS in ms. */
  retentionMs: number;
}

export interface Swept {
  /** Final records deleted. */
  records: number;
  /** Live-feed events trimmed (each carries a record). */
  feedEvents: number;
  /** Callback jobs deleted (each carries a record). */
  callbackJobs: number;
}

/**
 * Deletes what RETENTION_DAYS has ended for by `now`: final records, the feed events older than
 * the retention and old callback jobs.
 */
export async function sweepExpired({ maintenance, keys, callbacks, retentionMs }: RetentionDeps, now = Date.now()): Promise<Swept> {
  const swept: Swept = { records: 0, feedEvents: 0, callbackJobs: 0 };
  for (const tag of keys.allTags()) {
    for (;;) {
      const { expired, examined } = await maintenance.expire(tag, now, BATCH);
      swept.records += expired;
      if (examined < BATCH) break;
    }
    swept.feedEvents += await maintenance.trimFeed(tag, now);
  }
  // BullMQ measures the age on this process's clock: shift the grace so the cut-off is `now - retentionMs`
  swept.callbackJobs = await callbacks.removeOlderThan(Math.max(0, retentionMs + Date.now() - now));
  return swept;
}

/** Runs `sweepExpired` now and every `intervalMs` until stopped; any worker may, they share the work. */
export function startRetentionSweeper(deps: RetentionDeps, log: Logger, intervalMs: number) {
  const sweep = async () => {
    const { records, feedEvents, callbackJobs } = await sweepExpired(deps);
    if (records > 0) log.info({ expired: records }, 'records past retention deleted');
    if (feedEvents + callbackJobs > 0) log.info({ feedEvents, callbackJobs }, 'feed events and callback jobs past retention deleted');
  };
  return runPeriodically(sweep, intervalMs, (err) => log.warn({ err }, 'retention sweep failed; trying again later'));
}
