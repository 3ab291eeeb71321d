import type { Logger } from 'pino';
import type { Suppressions } from '@punctual/store';
import { runPeriodically } from './periodic.js';

/**
 * Finishes opt-outs (and opt-ins) whose process died before every partition had them, from the
 * canonical lists, now and every `intervalMs` until stopped. Any worker may; they share the work.
 */
export function startSuppressionRepair(suppressions: Suppressions, log: Logger, intervalMs: number) {
  const repair = async () => {
    const repaired = await suppressions.repair(Date.now());
    if (repaired > 0) log.warn({ repaired }, 'unfinished suppression changes applied to every partition');
  };
  // the worker's log (withSafeErrors) drops a Redis error's command arguments and redacts numbers
  const onError = (err: unknown) => log.warn({ err }, 'suppression repair failed; trying again later');
  return runPeriodically(repair, intervalMs, onError);
}
