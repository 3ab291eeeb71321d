import type { Logger } from 'pino';
import { RECEIPT_STATUSES, type ReceiptStatus } from '@punctual/shared';
import type { Scheduler } from '@punctual/store';
import type { TwilioLookup } from './channels/twilio-lookup.js';
import { runPeriodically } from './periodic.js';

export interface ReceiptTaskDeps {
  scheduler: Scheduler;
  /** Twilio's Message resource; unset when this worker has no Twilio account. */
  lookUp?: (sid: string) => Promise<TwilioLookup>;
  log: Logger;
}

/** Lookups per pass, all partitions together: with the pass interval, the pace Twilio is asked at. */
export const LOOKUPS_PER_PASS = 50;
const LOOKUP_CONCURRENCY = 4;
/** A lookup taken but not finished (its worker died, Twilio was unavailable) is due again this much later. */
export const LOOKUP_RETRY_MS = 60_000;
/** A receipt whose callback is still not queued this long after it was stored lost its process meanwhile. */
const OUTBOX_GRACE_MS = 30_000;
const OUTBOX_BATCH = 500;

/** Receipts after which Twilio is never asked again. */
const SETTLED = new Set(['delivered', 'read', 'undelivered', 'failed']);
const RECEIPTS = new Set<string>(RECEIPT_STATUSES);

export interface LookupPass {
  lookedUp: number;
  applied: number;
  rateLimited: boolean;
}

/**
 * Looks up once, at Twilio, each message whose receipt is still missing or only `sent`
 * RECEIPT_POLL_AFTER_MS after acceptance (the deliver transition put it in its partition's lookup
 * set; a delivered, read, undelivered or failed receipt took it out). At most LOOKUPS_PER_PASS a
 * pass, LOOKUP_CONCURRENCY at a time; a 429 ends the pass and gives back what it had not tried.
 */
export async function lookUpMissingReceipts({ scheduler, lookUp, log }: ReceiptTaskDeps, now = Date.now()): Promise<LookupPass> {
  const pass: LookupPass = { lookedUp: 0, applied: 0, rateLimited: false };
  if (!lookUp) return pass;
  const taken: { tag: string; id: string }[] = [];
  for (const tag of scheduler.keys.allTags()) {
    if (taken.length >= LOOKUPS_PER_PASS) break;
    const ids = await scheduler.receipts.takeDueLookups(tag, now, LOOKUPS_PER_PASS - taken.length, now + LOOKUP_RETRY_MS);
    taken.push(...ids.map((id) => ({ tag, id })));
  }

  let next = 0;
  const lookUpOne = async (tag: string, id: string) => {
    const fields = await scheduler.store.fields(id);
    const sid = fields?.providerMessageId;
    if (!fields || fields.status !== 'delivered' || !sid || SETTLED.has(fields.receiptStatus ?? '')) {
      return scheduler.receipts.lookupDone(tag, id);
    }
    const answer = await lookUp(sid);
    switch (answer.outcome) {
      case 'rateLimited':
        pass.rateLimited = true;
        return scheduler.receipts.lookupLater(tag, [id], now);
      case 'unavailable':
        // stays leased: due again after LOOKUP_RETRY_MS
        log.info({ messageId: id, reason: answer.reason }, 'receipt lookup failed; trying again later');
        return;
      case 'gone':
      case 'refused':
        log.warn({ messageId: id, reason: answer.reason }, 'receipt lookup refused by Twilio');
        return scheduler.receipts.lookupDone(tag, id);
      case 'found': {
        pass.lookedUp++;
        if (RECEIPTS.has(answer.status)) {
          const receipt = { providerMessageId: sid, messageId: id, status: answer.status as ReceiptStatus, at: answer.at ?? Date.now(), ...(answer.errorCode ? { errorCode: answer.errorCode } : {}) };
          if ((await scheduler.recordReceipt(receipt, Date.now())).outcome === 'applied') pass.applied++;
        }
        return scheduler.receipts.lookupDone(tag, id);
      }
    }
  };
  const lane = async () => {
    while (!pass.rateLimited && next < taken.length) {
      const { tag, id } = taken[next++]!;
      await lookUpOne(tag, id);
    }
  };
  await Promise.all(Array.from({ length: LOOKUP_CONCURRENCY }, lane));
  const untried = taken.slice(next);
  for (const tag of new Set(untried.map((t) => t.tag))) {
    await scheduler.receipts.lookupLater(tag, untried.filter((t) => t.tag === tag).map((t) => t.id), now);
  }
  return pass;
}

/**
 * Every `intervalMs`: queues the receipt callbacks a process died before queueing, then looks up
 * missing receipts at Twilio. Any worker may; they share the work through leases.
 */
export function startReceiptTasks(deps: ReceiptTaskDeps, intervalMs: number) {
  const run = async () => {
    const requeued = await deps.scheduler.requeueReceiptCallbacks(Date.now() - OUTBOX_GRACE_MS, OUTBOX_BATCH);
    if (requeued > 0) deps.log.warn({ requeued }, 'receipt callbacks queued again after their process died');
    const pass = await lookUpMissingReceipts(deps);
    if (pass.lookedUp > 0 || pass.rateLimited) deps.log.info(pass, 'receipts looked up at Twilio');
  };
  return runPeriodically(run, intervalMs, (err) => deps.log.warn({ err }, 'receipt tasks failed; trying again later'));
}
