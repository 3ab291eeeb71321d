/**
 * What every transition script shares. KEYS[1] is the message record, so a Redis Cluster client
 * routes the call to the message's slot; every other key is built from ARGV[1], the partition's
 * hash tag, and so lives in the same slot.
 *
 * Common ARGV: base (hash tag), now (epoch ms), feed stream max length, retention ms; a script's
 * own arguments start at ARGV[5].
 *
 * A record is one JSON string of string values (times as epoch ms): its size does not depend on
 * Redis's listpack limits, and the same bytes are the feed event's data. Every script reads and
 * decodes all it needs and checks every refusal before its first write, so a script that errors
 * (a value Lua cannot decode) or is refused (OOM is only ever raised at a script's first write)
 * changes nothing.
 */
/** ARGV[3] and ARGV[4] of every transition: the feed's max length and the retention (whole ms, at least 1). */
export function transitionArgs(eventsMaxLen: number, retentionMs: number): [string, number] {
  return [String(eventsMaxLen), Math.max(1, Math.round(retentionMs))];
}

export const PRELUDE = `
local rcall = redis.call
local base, now, maxlen, retention = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local function load(key)
  local json = rcall('GET', key)
  if not json then return nil end
  return cjson.decode(json)
end

-- the field each list of a status is ordered by
local LISTED = { scheduled = 'sendAt', delivered = 'deliveredAt', failed = 'failedAt', canceled = 'canceledAt' }
local FINAL = { delivered = true, failed = true, canceled = true }

local function rkey(recipient)
  return (string.gsub(recipient, '^%+', ''))
end

-- a batch's part in this partition: its counts by status (and createdAt, total)
local function batch_key(rec)
  return base .. ':t:' .. rec.tenant .. ':batch:' .. rec.batchId
end

-- a tenant's list of one status, and the same narrowed to the record's channel, recipient and
-- receipt; a scheduled message also enters the partition's list of every tenant's messages to
-- the recipient on the channel (which an opt-out cancels) and, in a batch, its batch's list
local function lists(rec, status)
  local t = base .. ':t:' .. rec.tenant .. ':' .. status
  local keys = { t, t .. ':c:' .. rec.channel, t .. ':r:' .. rkey(rec.recipient) }
  if rec.receiptStatus then keys[#keys + 1] = t .. ':rc:' .. rec.receiptStatus end
  if status == 'scheduled' then
    keys[#keys + 1] = base .. ':rcpt:' .. rec.channel .. ':' .. rkey(rec.recipient)
    if rec.batchId then keys[#keys + 1] = batch_key(rec) .. ':scheduled' end
  end
  return keys
end

-- the sorted set a status keeps outside the tenant's lists, with the score a record enters it by
local function status_set(rec)
  if rec.status == 'scheduled' then return base .. ':due', rec.sendAt end
  if rec.status == 'sending' then return base .. ':sending', now end
  if FINAL[rec.status] then return base .. ':expiring', tonumber(now) + retention end
end

-- takes the record out of every set of its current status
local function unindex(rec)
  if LISTED[rec.status] then
    for _, key in ipairs(lists(rec, rec.status)) do rcall('ZREM', key, rec.id) end
  end
  local set = status_set(rec)
  if set then rcall('ZREM', set, rec.id) end
end

-- puts the record into every set of its current status
local function index(rec)
  local field = LISTED[rec.status]
  if field then
    for _, key in ipairs(lists(rec, rec.status)) do rcall('ZADD', key, rec[field], rec.id) end
  end
  local set, score = status_set(rec)
  if set then rcall('ZADD', set, score, rec.id) end
end

-- a batch's counts in the partition go after the retention, as the final records do, once none
-- of its messages there is scheduled or sending
local function expire_if_idle(key)
  local live = rcall('HMGET', key, 'scheduled', 'sending')
  if (tonumber(live[1]) or 0) + (tonumber(live[2]) or 0) <= 0 then rcall('PEXPIRE', key, retention) end
end

-- a batch's counts follow its messages' changes of status
local function tally(rec, from, to)
  local key = batch_key(rec)
  rcall('HINCRBY', key, from, -1)
  rcall('HINCRBY', key, to, 1)
  if FINAL[to] then
    expire_if_idle(key)
  elseif FINAL[from] then
    rcall('PERSIST', key)
  end
end

-- a change of status, with every index (and the batch's counts) kept in step; the worker sending
-- a message is named on it only while it is sending
local function move(rec, status)
  local from = rec.status
  unindex(rec)
  if status ~= 'sending' then rec.claimedBy = nil end
  rec.status = status
  index(rec)
  if rec.batchId then tally(rec, from, status) end
end

-- the tenant's scheduled messages in this partition, which its cap (MAX_SCHEDULED_PER_TENANT) limits
local function scheduled_count(tenant)
  return rcall('ZCARD', base .. ':t:' .. tenant .. ':scheduled')
end

local function at_cap(tenant, cap)
  return scheduled_count(tenant) >= tonumber(cap)
end

local function touch(rec)
  rec.updatedAt = now
  rec.version = tostring(tonumber(rec.version or '1') + 1)
end

local function count(outcome, channel)
  rcall('HINCRBY', base .. ':stats', outcome .. ':' .. channel, 1)
end

-- appends an event (the record's JSON after the change) to the partition's feed; the tenant
-- beside it lets the relay skip other tenants' events without parsing them
local function publish(event, tenant, json)
  rcall('XADD', base .. ':feed:events', 'MAXLEN', '~', maxlen, '*', 'event', event, 'tenant', tenant, 'data', json)
end

-- stores the record and appends its event to the partition's feed
local function save(key, rec, event)
  local json = cjson.encode(rec)
  rcall('SET', key, json)
  publish(event, rec.tenant, json)
  return json
end

-- which list keeps the tenant from messaging the recipient on the channel: 'deployment' (the
-- recipient opted out), 'tenant' (the tenant's own list) or nil. Each partition keeps a replica
-- of both (lua/suppressions.ts): <channel>:<digits> → sequence number, negative once lifted.
local function suppressed(tenant, channel, recipient)
  local member = channel .. ':' .. rkey(recipient)
  local all = rcall('HGET', base .. ':supp', member)
  if all and tonumber(all) > 0 then return 'deployment' end
  local own = rcall('HGET', base .. ':supp:t:' .. tenant, member)
  if own and tonumber(own) > 0 then return 'tenant' end
  return nil
end

-- scheduled → canceled, saying why: 'api' (a DELETE of it or of its batch) or 'opted_out'
local function cancel(key, rec, reason)
  rec.canceledAt = now
  rec.cancelReason = reason
  touch(rec)
  move(rec, 'canceled')
  count('canceled', rec.channel)
  return save(key, rec, 'messageDeleted')
end

-- sending → failed for good, with the error that ended it
local function fail(key, rec, lastError)
  rec.failedAt = now
  rec.lastError = lastError
  rec.nextAttemptAt = nil
  touch(rec)
  move(rec, 'failed')
  count('failed', rec.channel)
  return save(key, rec, 'messageFailed')
end

-- a message whose recipient opted out: canceled while scheduled, failed when already sending
local function stop_opted_out(key, rec)
  if rec.status == 'scheduled' then return cancel(key, rec, 'opted_out') end
  return fail(key, rec, 'RECIPIENT_OPTED_OUT: the recipient opted out of this channel; not sent again')
end
`;

/** A transition script: the prelude, then its body. */
export function transition(body: string): string {
  return PRELUDE + body;
}
