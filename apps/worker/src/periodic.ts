/**
 * Runs `task` now and then `intervalMs` after each run ends (never two runs at once), until the
 * returned stop is called; stop waits for a run in progress. A failed run is reported, not fatal.
 */
export function runPeriodically(task: () => Promise<unknown>, intervalMs: number, onError: (err: unknown) => void) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = task()
      .catch(onError)
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
