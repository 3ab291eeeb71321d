import { transition } from './prelude.js';

/**
 * A batch's messages in one partition, all in one call (POST /scheduled/batch makes one per
 * partition). KEYS[1]: the batch's counts in the partition (its createdAt is ARGV[2], now).
 * ARGV[5]: the tenant's cap, ARGV[6…]: the records' JSON, in item order. Each item is checked as
 * a single new message would be, in order (the cap counts the items accepted before it), and
 * every check runs before the first write. Reply: per item, `ok` or why it was refused.
 */
export const scheduleBatch = transition(`
local cap, first = tonumber(ARGV[5]), 6
local recs = {}
for i = first, #ARGV do recs[#recs + 1] = cjson.decode(ARGV[i]) end

-- why an item cannot be scheduled, given the tenant's scheduled messages before it; nil if it can
local function refusal(rec, scheduled)
  if rcall('EXISTS', base .. ':m:' .. rec.id) == 1 then return 'exists' end
  local optedOut = suppressed(rec.tenant, rec.channel, rec.recipient)
  if optedOut then return 'opted_out:' .. optedOut end
  if scheduled >= cap then return 'quota' end
  return nil
end

local outcomes, scheduled = {}, 0
if #recs > 0 then scheduled = scheduled_count(recs[1].tenant) end
for i, rec in ipairs(recs) do
  local why = refusal(rec, scheduled)
  outcomes[i] = why or 'ok'
  if not why then scheduled = scheduled + 1 end
end

local accepted, per_channel = 0, {}
for i, rec in ipairs(recs) do
  if outcomes[i] == 'ok' then
    local json = ARGV[first + i - 1]
    rcall('SET', base .. ':m:' .. rec.id, json)
    index(rec)
    publish('messageScheduled', rec.tenant, json)
    per_channel[rec.channel] = (per_channel[rec.channel] or 0) + 1
    accepted = accepted + 1
  end
end
for channel, n in pairs(per_channel) do rcall('HINCRBY', base .. ':stats', 'scheduled:' .. channel, n) end
rcall('HSETNX', KEYS[1], 'createdAt', now)
if accepted > 0 then
  rcall('HINCRBY', KEYS[1], 'total', accepted)
  rcall('HINCRBY', KEYS[1], 'scheduled', accepted)
  rcall('PERSIST', KEYS[1])
else
  expire_if_idle(KEYS[1])
end
return outcomes
`);

/**
 * Cancels up to ARGV[5] of a batch's scheduled messages in one partition, each as DELETE
 * /scheduled/:id would (event, counts); every record is read before the first write. KEYS[1]:
 * the batch's scheduled messages in the partition. Reply: { examined, canceled id… }.
 */
export const cancelBatch = transition(`
local ids = rcall('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
local recs = {}
for i, id in ipairs(ids) do recs[i] = load(base .. ':m:' .. id) or false end
local reply = { #ids }
for i, id in ipairs(ids) do
  local rec = recs[i]
  if rec and rec.status == 'scheduled' then
    cancel(base .. ':m:' .. id, rec, 'api')
    reply[#reply + 1] = id
  else
    -- names no scheduled message (the index is kept with the records, so this is only a guard)
    rcall('ZREM', KEYS[1], id)
  end
end
return reply
`);
