import type { Logger } from 'pino';
import type { Keyspace, Maintenance } from '@punctual/store';
import { runPeriodically } from './periodic.js';

const BATCH = 500;

/** Deletes every final record whose retention (RETENTION_DAYS) ended by `now`; returns how many. */
export async function sweepExpired(maintenance: Maintenance, keys: Keyspace, now = Date.now()): Promise<number> {
  let total = 0;
  for (const tag of keys.allTags()) {
    for (;;) {
      const { expired, examined } = await maintenance.expire(tag, now, BATCH);
      total += expired;
      if (examined < BATCH) break;
    }
  }
  return total;
}

/** Runs `sweepExpired` now and every `intervalMs` until stopped; any worker may, they share the work. */
export function startRetentionSweeper(maintenance: Maintenance, keys: Keyspace, log: Logger, intervalMs: number) {
  const sweep = async () => {
    const expired = await sweepExpired(maintenance, keys);
    if (expired > 0) log.info({ expired }, 'records past retention deleted');
  };
  return runPeriodically(sweep, intervalMs, (err) => log.warn({ err }, 'retention sweep failed; trying again later'));
}
