import type { Logger } from 'pino';
import type { MessageStore } from '@punctual/store';

const BATCH = 500;

/** Deletes every final record whose retention (RETENTION_DAYS) ended by `now`; returns how many. */
export async function sweepExpired(store: MessageStore, now = Date.now()): Promise<number> {
  let total = 0;
  for (const tag of store.keys.allTags()) {
    for (;;) {
      const { expired, examined } = await store.expire(tag, now, BATCH);
      total += expired;
      if (examined < BATCH) break;
    }
  }
  return total;
}

/** Runs `sweepExpired` now and every `intervalMs` until stopped; any worker may, they share the work. */
export function startRetentionSweeper(store: MessageStore, log: Logger, intervalMs: number) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = sweepExpired(store)
      .then((expired) => {
        if (expired > 0) log.info({ expired }, 'records past retention deleted');
      })
      .catch((err) => log.warn({ err }, 'retention sweep failed; trying again later'))
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
