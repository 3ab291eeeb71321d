/**
 * Lua scripts, one per state transition. KEYS[1] is the message record (or, for the scripts that
 * work on many messages, a key of their partition), so a Redis Cluster client routes the call to
 * the right slot; every other key the script builds shares that hash tag (ARGV[1]). Each transition also appends its event to the partition's feed
 * stream in the same script, so the feed can never disagree with the records.
 *
 * Replies: { status, ...payload } where a record travels as a flat HGETALL array.
 */

const PRELUDE = `
local rcall = redis.call
local base = ARGV[1]

local function read(key)
  local flat = rcall('HGETALL', key)
  if #flat == 0 then return nil, flat end
  local rec = {}
  for i = 1, #flat, 2 do rec[flat[i]] = flat[i + 1] end
  return rec, flat
end

local function rkey(recipient)
  return (string.gsub(recipient, '^%+', ''))
end

local function index_keys(rec, status)
  local t = base .. ':t:' .. rec.tenant .. ':' .. status
  return t, t .. ':c:' .. rec.channel, t .. ':r:' .. rkey(rec.recipient)
end

local function index_add(rec, status, score)
  local a, b, c = index_keys(rec, status)
  rcall('ZADD', a, score, rec.id)
  rcall('ZADD', b, score, rec.id)
  rcall('ZADD', c, score, rec.id)
end

local function index_rem(rec, status)
  local a, b, c = index_keys(rec, status)
  rcall('ZREM', a, rec.id)
  rcall('ZREM', b, rec.id)
  rcall('ZREM', c, rec.id)
end

local function add_scheduled(rec)
  index_add(rec, 'scheduled', rec.sendAt)
  rcall('ZADD', base .. ':due', rec.sendAt, rec.id)
end

local function rem_scheduled(rec)
  index_rem(rec, 'scheduled')
  rcall('ZREM', base .. ':due', rec.id)
end

local function count(outcome, channel)
  rcall('HINCRBY', base .. ':stats', outcome .. ':' .. channel, 1)
end

-- the record after the event, in the events stream of the BullMQ 'feed' queue
local function publish(event, key, maxlen)
  local rec, flat = read(key)
  rcall('XADD', base .. ':feed:events', 'MAXLEN', '~', maxlen, '*',
    'event', event, 'tenant', rec.tenant, 'mid', rec.id, 'data', cjson.encode(rec))
  return flat
end

-- a final record leaves every index, and its hash is deleted, once its retention has passed
local function expire_after(id, now, retention)
  rcall('ZADD', base .. ':expiring', tonumber(now) + tonumber(retention), id)
end

local function touch(key, now)
  rcall('HSET', key, 'updatedAt', now)
  rcall('HINCRBY', key, 'version', 1)
end
`;

function script(body: string): string {
  return PRELUDE + body;
}

/** ARGV: base, now, maxlen, field, value, … (the new record) */
export const scheduleMessage = script(`
if rcall('EXISTS', KEYS[1]) == 1 then return {'exists'} end
rcall('HSET', KEYS[1], unpack(ARGV, 4))
local rec = read(KEYS[1])
add_scheduled(rec)
count('scheduled', rec.channel)
return {'ok', publish('messageScheduled', KEYS[1], ARGV[3])}
`);

/** ARGV: base, now, maxlen, tenant, patch (JSON object of string values; null deletes a field) */
export const updateMessage = script(`
local rec = read(KEYS[1])
if not rec or rec.tenant ~= ARGV[4] then return {'not_found'} end
if rec.status ~= 'scheduled' then return {'not_scheduled', rec.status} end
rem_scheduled(rec)
for field, value in pairs(cjson.decode(ARGV[5])) do
  if value == cjson.null then rcall('HDEL', KEYS[1], field) else rcall('HSET', KEYS[1], field, value) end
end
touch(KEYS[1], ARGV[2])
add_scheduled(read(KEYS[1]))
return {'ok', publish('messageUpdated', KEYS[1], ARGV[3])}
`);

/** ARGV: base, now, maxlen, tenant, retention ms */
export const cancelMessage = script(`
local rec = read(KEYS[1])
if not rec or rec.tenant ~= ARGV[4] then return {'not_found'} end
if rec.status ~= 'scheduled' then return {'not_scheduled', rec.status} end
rem_scheduled(rec)
rcall('HSET', KEYS[1], 'status', 'canceled', 'canceledAt', ARGV[2])
touch(KEYS[1], ARGV[2])
index_add(rec, 'canceled', ARGV[2])
count('canceled', rec.channel)
expire_after(rec.id, ARGV[2], ARGV[5])
return {'ok', publish('messageDeleted', KEYS[1], ARGV[3])}
`);

/**
 * scheduled (and due) → sending, or another attempt of a message already sending (a retry, or a
 * job re-run after its worker died). ARGV: base, now, maxlen. Reply: {'claimed', record, the
 * status it was claimed from}.
 */
export const claimMessage = script(`
local rec = read(KEYS[1])
if not rec then return {'missing'} end
local was = rec.status
if rec.status == 'scheduled' then
  if tonumber(rec.sendAt) > tonumber(ARGV[2]) then return {'early', rec.sendAt} end
  rem_scheduled(rec)
  rcall('HSET', KEYS[1], 'status', 'sending')
elseif rec.status ~= 'sending' then
  return {'final', rec.status}
end
rcall('HINCRBY', KEYS[1], 'attempts', 1)
rcall('HDEL', KEYS[1], 'nextAttemptAt')
touch(KEYS[1], ARGV[2])
rcall('ZADD', base .. ':sending', ARGV[2], rec.id)
return {'claimed', publish('messageSending', KEYS[1], ARGV[3]), was}
`);

/** sending → delivered. ARGV: base, now, maxlen, providerMessageId, lateness bucket, lateness ms, retention ms */
export const deliverMessage = script(`
local rec = read(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
rcall('ZREM', base .. ':sending', rec.id)
rcall('HSET', KEYS[1], 'status', 'delivered', 'deliveredAt', ARGV[2], 'providerMessageId', ARGV[4])
touch(KEYS[1], ARGV[2])
index_add(rec, 'delivered', ARGV[2])
count('delivered', rec.channel)
rcall('HINCRBY', base .. ':lateness', ARGV[5], 1)
rcall('HINCRBY', base .. ':lateness', 'count', 1)
rcall('HINCRBY', base .. ':lateness', 'sum', ARGV[6])
expire_after(rec.id, ARGV[2], ARGV[7])
return {'ok', publish('messageDelivered', KEYS[1], ARGV[3])}
`);

/** sending → failed. ARGV: base, now, maxlen, lastError, retention ms */
export const failMessage = script(`
local rec = read(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
rcall('ZREM', base .. ':sending', rec.id)
rcall('HSET', KEYS[1], 'status', 'failed', 'failedAt', ARGV[2], 'lastError', ARGV[4])
rcall('HDEL', KEYS[1], 'nextAttemptAt')
touch(KEYS[1], ARGV[2])
index_add(rec, 'failed', ARGV[2])
count('failed', rec.channel)
expire_after(rec.id, ARGV[2], ARGV[5])
return {'ok', publish('messageFailed', KEYS[1], ARGV[3])}
`);

/** A transient failure: stays sending until the next attempt. ARGV: base, now, maxlen, lastError, nextAttemptAt */
export const retryMessage = script(`
local rec = read(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
rcall('HSET', KEYS[1], 'lastError', ARGV[4], 'nextAttemptAt', ARGV[5])
touch(KEYS[1], ARGV[2])
count('retried', rec.channel)
return {'ok', publish('messageRetrying', KEYS[1], ARGV[3])}
`);

/**
 * A claim given back unused: the provider asked the whole channel to slow down (HTTP 429), so the
 * attempt does not count. Stays sending; no event, the next claim publishes messageSending again.
 * ARGV: base, now, maxlen, lastError
 */
export const releaseClaim = script(`
local rec = read(KEYS[1])
if not rec then return {'missing'} end
if rec.status ~= 'sending' then return {'final', rec.status} end
if tonumber(rec.attempts) > 0 then rcall('HINCRBY', KEYS[1], 'attempts', -1) end
rcall('HSET', KEYS[1], 'lastError', ARGV[4])
touch(KEYS[1], ARGV[2])
count('throttled', rec.channel)
local _, flat = read(KEYS[1])
return {'ok', flat}
`);

/** failed → scheduled now, attempts start again. ARGV: base, now, maxlen, tenant */
export const rescheduleFailedMessage = script(`
local rec = read(KEYS[1])
if not rec or rec.tenant ~= ARGV[4] then return {'not_found'} end
if rec.status ~= 'failed' then return {'not_failed', rec.status} end
index_rem(rec, 'failed')
rcall('ZREM', base .. ':expiring', rec.id)
rcall('HSET', KEYS[1], 'status', 'scheduled', 'sendAt', ARGV[2], 'attempts', 0)
rcall('HDEL', KEYS[1], 'failedAt', 'nextAttemptAt')
touch(KEYS[1], ARGV[2])
add_scheduled(read(KEYS[1]))
count('scheduled', rec.channel)
return {'ok', publish('messageScheduled', KEYS[1], ARGV[3])}
`);

/**
 * Final records whose retention has passed leave every index and are deleted, at most `limit` per
 * call. KEYS[1]: the partition's expiring set. ARGV: base, now, limit. Reply: { expired, examined }
 */
export const expireMessages = script(`
local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local expired = 0
for _, id in ipairs(due) do
  local key = base .. ':m:' .. id
  local rec = read(key)
  if rec and (rec.status == 'delivered' or rec.status == 'failed' or rec.status == 'canceled') then
    index_rem(rec, rec.status)
    rcall('DEL', key)
    expired = expired + 1
  end
  rcall('ZREM', KEYS[1], id)
end
return { expired, #due }
`);

/**
 * One page of an index, from a (score, id) boundary, in either direction, without scanning:
 * the boundary's rank is found by ZCOUNT plus a binary search among equal scores, O(log² n).
 * KEYS[1]: index. ARGV: base, dir (asc|desc), limit, cursorScore ('' = none), cursorId,
 * min score, max score, channel ('' = any; only when the index is a recipient's).
 * Reply: { more (0|1), boundScore, boundId, {id, score, flat record}… }
 */
export const listPage = `
local key, base, dir, limit = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local cscore, cid, minS, maxS, channel = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local rcall = redis.call
local SCAN_CAP = 5000

-- number of members ordered before the boundary (score, id); inclusive also counts the boundary
local function rank_of(score, id, inclusive)
  local lo = rcall('ZCOUNT', key, '-inf', '(' .. score)
  local hi = rcall('ZCOUNT', key, '-inf', score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = rcall('ZRANGE', key, mid, mid)[1]
    if m < id or (inclusive and m == id) then lo = mid + 1 else hi = mid end
  end
  return lo
end

local pos, stop
if dir == 'asc' then
  pos = rcall('ZCOUNT', key, '-inf', '(' .. minS)
  if cscore ~= '' then pos = math.max(pos, rank_of(cscore, cid, true)) end
  stop = rcall('ZCOUNT', key, '-inf', maxS) - 1
else
  pos = rcall('ZCOUNT', key, '-inf', maxS) - 1
  if cscore ~= '' then pos = math.min(pos, rank_of(cscore, cid, false) - 1) end
  stop = rcall('ZCOUNT', key, '-inf', '(' .. minS)
end

local found, scanned, last = {}, 0, nil
local chunk = limit + 1
while #found <= limit and scanned < SCAN_CAP do
  local lo, hi
  if dir == 'asc' then
    if pos > stop then break end
    lo, hi = pos, math.min(pos + chunk - 1, stop)
  else
    if pos < stop then break end
    lo, hi = math.max(pos - chunk + 1, stop), pos
  end
  local batch = rcall('ZRANGE', key, lo, hi, 'WITHSCORES')
  if #batch == 0 then break end
  local n = #batch / 2
  for j = 1, n do
    local i = (dir == 'asc') and (2 * j - 1) or (2 * (n - j) + 1)
    local id, score = batch[i], batch[i + 1]
    if dir == 'asc' then pos = pos + 1 else pos = pos - 1 end
    scanned = scanned + 1
    local flat = rcall('HGETALL', base .. ':m:' .. id)
    local keep = #flat > 0
    if keep and channel ~= '' then
      keep = rcall('HGET', base .. ':m:' .. id, 'channel') == channel
    end
    if keep then found[#found + 1] = { id, score, flat } end
    last = { score, id }
    if #found > limit or scanned >= SCAN_CAP then break end
  end
end

local more, bscore, bid = 0, '', ''
if #found > limit then
  found[#found] = nil
  more, bscore, bid = 1, found[#found][2], found[#found][1]
elseif scanned >= SCAN_CAP and last then
  more, bscore, bid = 1, last[1], last[2]
end
local reply = { more, bscore, bid }
for i = 1, #found do reply[#reply + 1] = found[i] end
return reply
`;

/**
 * Takes one of a tenant's scheduled-message slots unless all are taken. KEYS[1]: the tenant's
 * counter (outside the partitions: it counts across them). ARGV: cap. Reply: the new count, or -1.
 */
export const reserveScheduledSlot = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return -1 end
return redis.call('INCR', KEYS[1])
`;

/** Gives a slot back (never below zero). KEYS[1]: the tenant's counter. ARGV: how many. */
export const releaseScheduledSlot = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local by = math.min(n, tonumber(ARGV[1]))
if by <= 0 then return n end
return redis.call('DECRBY', KEYS[1], by)
`;
