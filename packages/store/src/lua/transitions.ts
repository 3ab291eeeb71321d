import { transition } from './prelude.js';
import { receiptTransition } from './receipts.js';

/**
 * The transitions of a message, one script each. Replies: `{ outcome, ... }`, where a changed
 * record travels as its stored JSON.
 */

/**
 * A new scheduled message, unless its id exists, its recipient opted out of the channel, or its
 * tenant already has `cap` scheduled messages in this partition. ARGV[5]: cap, ARGV[6]: the
 * record's JSON.
 */
export const scheduleMessage = transition(`
if rcall('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local rec = cjson.decode(ARGV[6])
local optedOut = suppressed(rec.tenant, rec.channel, rec.recipient)
if optedOut then return {'opted_out', optedOut} end
if at_cap(rec.tenant, ARGV[5]) then return {'quota'} end
rcall('SET', KEYS[1], ARGV[6])
index(rec)
count('scheduled', rec.channel)
publish('messageScheduled', rec.tenant, ARGV[6])
return {'ok'}
`);

/**
 * Changes a scheduled message, unless its recipient (the new one, if it changes) opted out of its
 * channel. ARGV[5]: tenant, ARGV[6]: patch (JSON object of string values;
 * null removes a field), ARGV[7]: the version the client last saw ('' = any), ARGV[8]: '1' when
 * the patch's sendAt was worked out without the record's quiet hours (refused as `recheck` if it
 * has some: the caller reads the record and works it out again). The merged record
 * must still be one a single request could create: message or template (not both), templates on
 * WhatsApp only. Reply: ok, record, the sendAt before.
 */
export const updateMessage = transition(`
local rec = load(KEYS[1])
local patch = cjson.decode(ARGV[6])
if not rec or rec.tenant ~= ARGV[5] then return {'not_found'} end
if ARGV[7] ~= '' and (rec.version or '1') ~= ARGV[7] then return {'version_mismatch', rec.version or '1'} end
if rec.status ~= 'scheduled' then return {'not_scheduled', rec.status} end
if ARGV[8] == '1' and rec.quietHours then return {'recheck'} end
local merged = {}
for field, value in pairs(rec) do merged[field] = value end
for field, value in pairs(patch) do
  if value == cjson.null then merged[field] = nil else merged[field] = value end
end
-- encoding and segments describe an SMS text only
if merged.channel ~= 'sms' then merged.encoding = nil; merged.segments = nil end
if (merged.message == nil) == (merged.template == nil) then return {'invalid', 'content'} end
if merged.template ~= nil and merged.channel ~= 'whatsapp' then return {'invalid', 'template_channel'} end
local optedOut = suppressed(merged.tenant, merged.channel, merged.recipient)
if optedOut then return {'opted_out', optedOut} end
-- the record first: an update may grow it, and Redis checks memory at a script's first write
-- only (a ZREM would let the rest through past maxmemory), so under OOM it is refused whole
touch(merged)
local json = save(KEYS[1], merged, 'messageUpdated')
unindex(rec)
index(merged)
return {'ok', json, rec.sendAt}
`);

/** scheduled → canceled. ARGV[5]: tenant, ARGV[6]: the version the client last saw ('' = any). */
export const cancelMessage = transition(`
local rec = load(KEYS[1])
if not rec or rec.tenant ~= ARGV[5] then return {'not_found'} end
if ARGV[6] ~= '' and (rec.version or '1') ~= ARGV[6] then return {'version_mismatch', rec.version or '1'} end
if rec.status ~= 'scheduled' then return {'not_scheduled', rec.status} end
return {'ok', cancel(KEYS[1], rec, 'api')}
`);

/**
 * scheduled (and due) → sending, or another attempt of a message already sending (a retry, or a
 * job re-run after its worker died). ARGV[5]: the claiming worker process ('' = unnamed), kept
 * while the message is sending so a dead worker's claims can be found. Reply: claimed, record,
 * the status it was claimed from. A message whose recipient opted out is not sent: canceled if
 * scheduled, failed if sending.
 */
export const claimMessage = transition(`
local rec = load(KEYS[1])
if not rec then return {'missing'} end
local was = rec.status
if (was == 'scheduled' or was == 'sending') and suppressed(rec.tenant, rec.channel, rec.recipient) then
  stop_opted_out(KEYS[1], rec)
  return {'final', rec.status}
end
if was == 'scheduled' then
  if tonumber(rec.sendAt) > tonumber(now) then return {'early', rec.sendAt} end
elseif was ~= 'sending' then
  return {'final', was}
end
rec.attempts = tostring(tonumber(rec.attempts or '0') + 1)
if ARGV[5] ~= '' then rec.claimedBy = ARGV[5] else rec.claimedBy = nil end
rec.nextAttemptAt = nil
touch(rec)
move(rec, 'sending')
return {'claimed', save(KEYS[1], rec, 'messageSending'), was}
`);

/**
 * sending → delivered. ARGV[5]: providerMessageId, ARGV[6]: lateness bucket, ARGV[7]: lateness ms,
 * ARGV[8]: when to look its receipt up at the provider ('' = never). The provider id is indexed
 * for receipts, and a receipt that arrived before this transition is applied after it.
 * Reply: ok, record, the record after that receipt (if one was waiting).
 */
export const deliverMessage = receiptTransition(`
local rec = load(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
local parked = parked_receipt(ARGV[5])
rec.deliveredAt = now
rec.providerMessageId = ARGV[5]
touch(rec)
move(rec, 'delivered')
count('delivered', rec.channel)
rcall('HINCRBY', base .. ':lateness', ARGV[6], 1)
rcall('HINCRBY', base .. ':lateness', 'sum', ARGV[7])
local delivered = save(KEYS[1], rec, 'messageDelivered')
track_receipts(rec, ARGV[8], parked)
if not parked then return {'ok', delivered} end
return {'ok', delivered, apply_receipt(KEYS[1], rec, parked.status, parked.at, parked.code)}
`);

/** sending → failed. ARGV[5]: lastError. */
export const failMessage = transition(`
local rec = load(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
return {'ok', fail(KEYS[1], rec, ARGV[5])}
`);

/** A transient failure: stays sending until the next attempt. ARGV[5]: lastError, ARGV[6]: nextAttemptAt. */
export const retryMessage = transition(`
local rec = load(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
rec.lastError = ARGV[5]
rec.nextAttemptAt = ARGV[6]
rec.throttledAt = nil
touch(rec)
count('retried', rec.channel)
return {'ok', save(KEYS[1], rec, 'messageRetrying')}
`);

/**
 * A claim given back unused: the provider asked the channel (HTTP 429) or one recipient's
 * messages to slow down, so the attempt does not count. Stays sending; `throttledAt` keeps the
 * first such refusal of the run. No event, the next claim publishes messageSending again.
 * ARGV[5]: lastError.
 */
export const releaseClaim = transition(`
local rec = load(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
if tonumber(rec.attempts or '0') > 0 then rec.attempts = tostring(tonumber(rec.attempts) - 1) end
if rec.throttledAt == nil then rec.throttledAt = now end
rec.lastError = ARGV[5]
touch(rec)
count('throttled', rec.channel)
local json = cjson.encode(rec)
rcall('SET', KEYS[1], json)
return {'ok', json}
`);

/**
 * failed → scheduled now, attempts start again, within the tenant's cap like a new message,
 * unless its recipient opted out. ARGV[5]: tenant, ARGV[6]: cap.
 */
export const rescheduleFailedMessage = transition(`
local rec = load(KEYS[1])
if not rec or rec.tenant ~= ARGV[5] then return {'not_found'} end
if rec.status ~= 'failed' then return {'not_failed', rec.status} end
local optedOut = suppressed(rec.tenant, rec.channel, rec.recipient)
if optedOut then return {'opted_out', optedOut} end
if at_cap(rec.tenant, ARGV[6]) then return {'quota'} end
rec.sendAt = now
rec.attempts = '0'
rec.failedAt = nil
rec.nextAttemptAt = nil
rec.throttledAt = nil
touch(rec)
move(rec, 'scheduled')
count('scheduled', rec.channel)
return {'ok', save(KEYS[1], rec, 'messageScheduled')}
`);
