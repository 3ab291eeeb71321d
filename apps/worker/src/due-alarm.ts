import type { Worker } from 'bullmq';
import type { RedisClient } from '@punctual/store';

/** BullMQ scores delayed jobs as timestamp·4096 + a counter. */
const DELAYED_SCORE_FACTOR = 0x1000;

/**
 * Wakes an idle BullMQ worker at the moment its next delayed job is due. BullMQ waits for that
 * moment in a blocking BZPOPMIN whose timeout Redis only checks `hz` times a second (up to
 * 100 ms late at the default hz 10); pushing the "jobs waiting" marker at the due time from a
 * Node timer makes lateness independent of the server's `hz`. The head of the delayed set is
 * re-read at least every `refreshMs` to learn of jobs added meanwhile.
 */
export function startDueAlarm(redis: RedisClient, worker: Worker, refreshMs = 100) {
  const delayedKey = worker.keys.delayed!;
  const markerKey = worker.keys.marker!;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastWoken: string | undefined;
  let checks = 0;

  const tick = async () => {
    let wait = refreshMs;
    try {
      const head = await redis.zrange(delayedKey, 0, 0, 'WITHSCORES');
      const dueAt = head.length === 2 ? Math.floor(Number(head[1]) / DELAYED_SCORE_FACTOR) : Infinity;
      const now = Date.now();
      if (dueAt <= now) {
        if (head[0] !== lastWoken) {
          await redis.zadd(markerKey, 0, '0');
          lastWoken = head[0];
          checks = 0;
          wait = 1;
        } else {
          // Woken but not promoted yet: the worker is on its way (look again in a few ms, or
          // the next head would wait for Redis's hz) or busy (back off to refreshMs).
          wait = Math.min(refreshMs, 2 ** ++checks);
        }
      } else {
        wait = Math.min(dueAt - now, refreshMs);
      }
    } catch {
      wait = refreshMs * 10;
    }
    if (!stopped) timer = setTimeout(() => void tick(), wait);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
