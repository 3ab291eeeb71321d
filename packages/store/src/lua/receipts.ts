import { transition } from './prelude.js';

/** Upper bounds (ms) of the acceptance → receipt histogram buckets. */
export const RECEIPT_LATENCY_BUCKETS_MS = [1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 21_600_000, 86_400_000];

/** How long a receipt that arrived before its message's deliver transition is kept for it. */
export const PARKED_RECEIPT_TTL_MS = 10 * 60_000;
/** Receipts parked at once per partition: past it the oldest is dropped. */
export const MAX_PARKED_RECEIPTS = 10_000;

/**
 * Lua shared by the receipt script and the deliver transition (which applies a receipt that
 * arrived before it). Keys of a partition, besides the prelude's:
 * `:pid` (hash: provider message id → message id), `:receipts` (counters `<status>:<channel>`),
 * `:receipt-latency` (histogram `<status>:le:<ms>`, `<status>:count`, `<status>:sum`),
 * `:receipt-lookups` (zset: messages whose receipt is looked up at the provider, by due time),
 * `:receipt-parked` + `:receipt-parked-at` (receipts of provider ids not recorded yet, and their
 * expiry), `:receipt-outbox` (zset `<id>:<version>` of receipt callbacks not yet queued).
 */
export const RECEIPT_HELPERS = `
-- sent < delivered < read; read, undelivered and failed end it
local RECEIPT_RANK = { sent = 1, delivered = 2, read = 3, undelivered = 3, failed = 3 }
-- receipts after which the provider is never asked again
local LOOKUP_SETTLED = { delivered = true, read = true, undelivered = true, failed = true }
local RECEIPT_LATENCY_MS = { ${RECEIPT_LATENCY_BUCKETS_MS.join(', ')} }

-- the record's list narrowed to one receipt status (the prelude's lists() names it as well)
local function receipt_list(rec, receipt)
  return base .. ':t:' .. rec.tenant .. ':' .. rec.status .. ':rc:' .. receipt
end

-- whether a receipt moves the current one on: never backwards, never past a final one, never twice
local function receipt_moves_on(current, status)
  return current == nil or RECEIPT_RANK[status] > RECEIPT_RANK[current]
end

-- the receipt parked for a provider id, decoded; nil when there is none
local function parked_receipt(pid)
  local held = rcall('HGET', base .. ':receipt-parked', pid)
  if not held then return nil end
  local status, at, code = string.match(held, '^(%a+) (%d+) (%d*)$')
  if not status or not RECEIPT_RANK[status] then return nil end
  return { status = status, at = at, code = code }
end

local function unpark_receipt(pid)
  rcall('HDEL', base .. ':receipt-parked', pid)
  rcall('ZREM', base .. ':receipt-parked-at', pid)
end

-- stores a receipt that moves the record's one on, with its list, counters, latency, event and outbox entry
local function apply_receipt(key, rec, status, at, code)
  local field = LISTED[rec.status]
  if field and rec.receiptStatus then rcall('ZREM', receipt_list(rec, rec.receiptStatus), rec.id) end
  rec.receiptStatus = status
  rec.receiptAt = at
  if code ~= '' then rec.receiptErrorCode = code else rec.receiptErrorCode = nil end
  -- after delivery only receipts change a record: this and deliveredAt give back the delivered one
  rec.deliveredVersion = rec.deliveredVersion or rec.version
  touch(rec)
  if field then rcall('ZADD', receipt_list(rec, status), rec[field], rec.id) end
  if LOOKUP_SETTLED[status] then rcall('ZREM', base .. ':receipt-lookups', rec.id) end
  rcall('HINCRBY', base .. ':receipts', status .. ':' .. rec.channel, 1)
  local ms = math.max(0, tonumber(at) - tonumber(rec.deliveredAt or at))
  local bucket = 'inf'
  for _, le in ipairs(RECEIPT_LATENCY_MS) do
    if ms <= le then bucket = tostring(le) break end
  end
  local latency = base .. ':receipt-latency'
  rcall('HINCRBY', latency, status .. ':le:' .. bucket, 1)
  rcall('HINCRBY', latency, status .. ':count', 1)
  rcall('HINCRBY', latency, status .. ':sum', ms)
  if rec.callbackUrl then rcall('ZADD', base .. ':receipt-outbox', now, rec.id .. ':' .. rec.version) end
  return save(key, rec, 'messageReceipt')
end

-- at delivery: index the provider id, plan the lookup unless a settled receipt is already parked, take the parked one
local function track_receipts(rec, lookup_at, parked)
  rcall('HSET', base .. ':pid', rec.providerMessageId, rec.id)
  if lookup_at ~= '' and not (parked and LOOKUP_SETTLED[parked.status]) then
    rcall('ZADD', base .. ':receipt-lookups', lookup_at, rec.id)
  end
  if parked then unpark_receipt(rec.providerMessageId) end
end
`;

/** A transition script that applies receipts: the prelude, the receipt helpers, then its body. */
export function receiptTransition(body: string): string {
  return transition(RECEIPT_HELPERS + body);
}

/**
 * A provider's receipt for one partition. KEYS[1]: the partition's provider-id index (routes the
 * call). ARGV[5]: provider message id, ARGV[6]: message id the provider carried back ('' = find
 * it through the index), ARGV[7]: status, ARGV[8]: at (epoch ms), ARGV[9]: error code ('' = none),
 * ARGV[10]: '1' = park it when no message has that provider id yet while one is being sent (the
 * provider can report before our deliver transition has run; that transition applies it).
 * Reply: {applied, record} | {duplicate} | {ignored, current status} | {parked} | {unknown}.
 */
export const recordReceipt = receiptTransition(`
local pid, hinted, status, at, code, may_park = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10] == '1'
if not RECEIPT_RANK[status] then return {'unknown'} end
local id = hinted
if id == '' then id = rcall('HGET', KEYS[1], pid) or '' end
local key = base .. ':m:' .. id
local rec = nil
if id ~= '' then rec = load(key) end
if rec and rec.providerMessageId == pid then
  if rec.receiptStatus == status then return {'duplicate'} end
  if not receipt_moves_on(rec.receiptStatus, status) then return {'ignored', rec.receiptStatus} end
  return {'applied', apply_receipt(key, rec, status, at, code)}
end
if not may_park then return {'unknown'} end
local in_flight
if hinted ~= '' then in_flight = rec ~= nil and rec.status == 'sending'
else in_flight = rcall('ZCARD', base .. ':sending') > 0 end
if not in_flight then return {'unknown'} end
local held = parked_receipt(pid)
if held then
  if held.status == status then return {'duplicate'} end
  if not receipt_moves_on(held.status, status) then return {'ignored', held.status} end
end
local parked, parked_at = base .. ':receipt-parked', base .. ':receipt-parked-at'
local stale = rcall('ZRANGEBYSCORE', parked_at, '-inf', now, 'LIMIT', 0, 100)
for _, p in ipairs(stale) do unpark_receipt(p) end
if not held and rcall('ZCARD', parked_at) >= ${MAX_PARKED_RECEIPTS} then
  unpark_receipt(rcall('ZRANGE', parked_at, 0, 0)[1])
end
rcall('HSET', parked, pid, status .. ' ' .. at .. ' ' .. code)
rcall('ZADD', parked_at, tonumber(now) + ${PARKED_RECEIPT_TTL_MS}, pid)
return {'parked'}
`);

/**
 * Takes up to ARGV[2] messages whose receipt lookup is due at ARGV[1] (epoch ms) and leases them
 * until ARGV[3], so no other worker takes them meanwhile; a lookup that ends removes its message.
 * KEYS[1]: the partition's lookup set. Reply: the message ids.
 */
export const takeDueLookups = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id) end
return ids
`;
