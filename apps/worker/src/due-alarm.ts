import type { Worker } from 'bullmq';
import { nextDelayedJob, wakeWorkers, type RedisClient } from '@punctual/store';

/**
 * Wakes an idle BullMQ worker at the moment its next delayed job is due. BullMQ waits for that
 * moment in a blocking BZPOPMIN whose timeout Redis only checks `hz` times a second (up to
 * 100 ms late at the default hz 10); waking the worker at the due time from a Node timer makes
 * lateness independent of the server's `hz`. The head of the delayed set is re-read at least
 * every `refreshMs` to learn of jobs added meanwhile.
 */
export function startDueAlarm(redis: RedisClient, worker: Worker, refreshMs = 100) {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastWoken: string | undefined;
  let checks = 0;

  const tick = async () => {
    let wait = refreshMs;
    try {
      const next = await nextDelayedJob(redis, worker);
      const now = Date.now();
      if (next && next.dueAt <= now) {
        if (next.id !== lastWoken) {
          await wakeWorkers(redis, worker);
          lastWoken = next.id;
          checks = 0;
          wait = 1;
        } else {
          // Woken but not promoted yet: the worker is on its way (look again in a few ms, or
          // the next head would wait for Redis's hz) or busy (back off to refreshMs).
          wait = Math.min(refreshMs, 2 ** ++checks);
        }
      } else if (next) {
        wait = Math.min(next.dueAt - now, refreshMs);
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
