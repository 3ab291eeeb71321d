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

-- a tenant's list of one status, and the same narrowed to the record's channel, recipient and receipt
local function lists(rec, status)
  local t = base .. ':t:' .. rec.tenant .. ':' .. status
  local all = { t, t .. ':c:' .. rec.channel, t .. ':r:' .. rkey(rec.recipient) }
  if rec.receiptStatus then all[4] = t .. ':rc:' .. rec.receiptStatus end
  return all
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

-- a change of status, with every index kept in step
local function move(rec, status)
  unindex(rec)
  rec.status = status
  index(rec)
end

local function touch(rec)
  rec.updatedAt = now
  rec.version = tostring(tonumber(rec.version) + 1)
end

local function count(outcome, channel)
  rcall('HINCRBY', base .. ':stats', outcome .. ':' .. channel, 1)
end

-- stores the record and appends its event (the record after the change) to the partition's feed
local function save(key, rec, event)
  local json = cjson.encode(rec)
  rcall('SET', key, json)
  rcall('XADD', base .. ':feed:events', 'MAXLEN', '~', maxlen, '*',
    'event', event, 'tenant', rec.tenant, 'mid', rec.id, 'data', json)
  return json
end
`;

/** A transition script: the prelude, then its body. */
export function transition(body: string): string {
  return PRELUDE + body;
}
