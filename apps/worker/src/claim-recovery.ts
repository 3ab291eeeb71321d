import type { Logger } from 'pino';
import { releaseJobLock, type DeliveryQueues, type Keyspace, type Maintenance, type RedisClient, type WorkerHeartbeats } from '@punctual/store';
import { runPeriodically } from './periodic.js';

export interface ClaimRecoveryDeps {
  redis: RedisClient;
  keys: Keyspace;
  maintenance: Maintenance;
  deliveries: DeliveryQueues;
  heartbeats: WorkerHeartbeats;
  log: Logger;
}

/** How often the fleet's claims are checked, and how old a claim must be before it is looked at. */
export const CLAIM_CHECK_MS = 1000;
const BATCH = 500;

/**
 * Hands a dead worker's deliveries to the living within seconds, not when its locks expire.
 * BullMQ's lock must outlast a provider request (PROVIDER_TIMEOUT_MS + 2 s): a slow worker must
 * never lose a job it is still sending. But a killed worker's Redis connection closes at once,
 * while a slow or paused one stays open: a message still `sending` whose claiming worker has had
 * no connection for two checks in a row had its worker die. Its job's lock is given up, and
 * BullMQ's next stalled check (every second) puts the job back for another worker. Without CLIENT
 * LIST (some managed Redis), locks expire as before.
 */
export function startClaimRecovery(deps: ClaimRecoveryDeps) {
  let suspects = new Set<string>();
  const check = async () => {
    const claims = (await Promise.all(deps.keys.allTags().map((tag) => deps.maintenance.staleClaims(tag, Date.now() - CLAIM_CHECK_MS, BATCH)))).flat();
    const named = claims.filter((claim) => claim.worker !== null);
    if (named.length === 0) {
      suspects = new Set();
      return;
    }
    const live = await deps.heartbeats.connected();
    if (!live) return;
    const orphans = named.filter((claim) => !live.has(claim.worker!));
    const next = new Set(orphans.map((claim) => claim.id));
    for (const { id, worker } of orphans) {
      if (!suspects.has(id)) continue;
      if (await releaseJobLock(deps.redis, deps.deliveries.of(id), id)) {
        deps.log.warn({ messageId: id, worker }, 'the worker sending this message is gone: its job goes to another worker');
      }
    }
    suspects = next;
  };
  return runPeriodically(check, CLAIM_CHECK_MS, (err) => deps.log.warn({ err }, 'claim check failed; trying again later'));
}
