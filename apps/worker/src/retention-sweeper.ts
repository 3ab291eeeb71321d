import type { Logger } from 'pino';
import type { MessageStore, RedisClient } from '@punctual/store';
import type { CallbackQueues } from './callbacks/callback-queues.js';
import { runPeriodically } from './periodic.js';

const BATCH = 500;

export interface RetentionDeps {
  store: MessageStore;
  redis: RedisClient;
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
 * the retention (the stream is otherwise only capped by length) and old callback jobs.
 */
export async function sweepExpired({ store, redis, callbacks, retentionMs }: RetentionDeps, now = Date.now()): Promise<Swept> {
  const swept: Swept = { records: 0, feedEvents: 0, callbackJobs: 0 };
  for (const tag of store.keys.allTags()) {
    for (;;) {
      const { expired, examined } = await store.expire(tag, now, BATCH);
      swept.records += expired;
      if (examined < BATCH) break;
    }
    // stream ids start with their entry's time in ms: everything below that id is older
    swept.feedEvents += await redis.xtrim(store.keys.events(tag), 'MINID', Math.max(0, now - retentionMs));
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
