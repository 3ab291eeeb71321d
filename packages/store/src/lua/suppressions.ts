import { RANK_OF } from './list-page.js';
import { transition } from './prelude.js';

/**
 * Suppression lists. The canonical copy lives in the global slot (`{prefix}`): the deployment's
 * list (`:supp`, a hash member → {source, createdAt}) and each tenant's (`:supp:t:<tenant>`, a
 * sorted set by creation time, for paging; an entry added in the same millisecond as the newest
 * one takes the next millisecond, so the time alone orders the list and a page cursor, which
 * request logs show, never names a number). Every change there takes the next sequence number
 * and is journaled in `:supp:pending` until it has been applied to every partition, where a
 * replica (`{prefix-pN}:supp`, `{prefix-pN}:supp:t:<tenant>`) is what the message scripts check.
 * A replica keeps the sequence number of the change it applied (negative once lifted), so an
 * older change that arrives late (two requests racing, a repair) never undoes a newer one.
 * Members are `<channel>:<recipient digits>`; an op is `<seq>|<tenant or *>|<member>`.
 */

/** The canonical state of a member: whether it is suppressed, since when, and by what. */
const CANONICAL = `
local rcall = redis.call
local function canonical(gbase, scope, member)
  if scope == '*' then
    local current = rcall('HGET', gbase .. ':supp', member)
    if not current then return nil end
    local entry = cjson.decode(current)
    return entry.createdAt, entry.source
  end
  local score = rcall('ZSCORE', gbase .. ':supp:t:' .. scope, member)
  if not score then return nil end
  return score, 'api'
end

-- the next change of a member: its sequence number, journaled until every partition applied it
local function journal(gbase, scope, member, now)
  local seq = rcall('INCR', gbase .. ':supp:seq')
  local op = seq .. '|' .. scope .. '|' .. member
  rcall('ZADD', gbase .. ':supp:pending', now, op)
  return seq, op
end
`;

/**
 * Records an opt-out (ARGV[5] = '1') or its end ('0') in the canonical list. KEYS[1]: the
 * sequence counter. ARGV: global base, tenant ('*' = the deployment), channel, digits, on, now,
 * source. An opt-out is always journaled (applying it again heals a replica a crash left
 * behind); an opt-in only when it removed something, so a stray "YES" costs nothing. A new
 * opt-out counts in `:optouts` (<channel>:<source>). Reply: { changed 0|1, createdAt, source,
 * seq, op } (seq and op only when there is something to apply).
 */
export const recordSuppression = `${CANONICAL}
local gbase, scope, channel, digits, on, now, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6], ARGV[7]
local member = channel .. ':' .. digits
local createdAt, was = canonical(gbase, scope, member)
local changed = on ~= (createdAt ~= nil)
if changed and on then
  createdAt, was = now, source
  if scope == '*' then
    rcall('HSET', gbase .. ':supp', member, cjson.encode({ source = source, createdAt = now }))
  else
    local key = gbase .. ':supp:t:' .. scope
    local newest = rcall('ZREVRANGE', key, 0, 0, 'WITHSCORES')[2]
    if newest and tonumber(newest) >= tonumber(now) then createdAt = tostring(tonumber(newest) + 1) end
    rcall('ZADD', key, createdAt, member)
  end
  rcall('HINCRBY', gbase .. ':optouts', channel .. ':' .. source, 1)
elseif changed then
  if scope == '*' then rcall('HDEL', gbase .. ':supp', member) else rcall('ZREM', gbase .. ':supp:t:' .. scope, member) end
end
if not on and not changed then return { 0, '', '' } end
local seq, op = journal(gbase, scope, member, now)
return { changed and 1 or 0, createdAt or '', was or '', seq, op }
`;

/**
 * Takes over a journaled change that was not finished in time (its process died): the member's
 * canonical state now, under a new sequence number, replaces the old entry. KEYS[1]: the
 * journal. ARGV: global base, the old op, now. Reply: {} when another repairer took it first,
 * else { seq, op, on 0|1 }.
 */
export const reassertSuppression = `${CANONICAL}
local gbase, old, now = ARGV[1], ARGV[2], ARGV[3]
if not rcall('ZSCORE', KEYS[1], old) then return {} end
local scope, member = string.match(old, '^%d+|([^|]+)|(.+)$')
local createdAt = canonical(gbase, scope, member)
rcall('ZREM', KEYS[1], old)
local seq, op = journal(gbase, scope, member, now)
return { seq, op, createdAt and 1 or 0 }
`;

/**
 * Applies a change to one partition's replica and cancels, `limit` at a time, the partition's
 * still-scheduled messages it suppresses (every tenant's for the deployment list, one tenant's
 * for its own), in the same script: no message to the recipient can be scheduled after the
 * replica changed, so once the pages run out none is left. Also cancels when the change is older
 * than the replica's (a repeat), as long as the replica suppresses. KEYS[1]: the replica hash.
 * ARGV[5]: tenant ('' = every tenant), channel, digits, seq, on ('1'|'0'), limit, then the
 * (score, id) of the last message of the previous page ('' '' = from the start).
 * Reply: { more 0|1, boundScore, boundId, canceled id… }
 */
export const applySuppression = transition(`
local tenant, channel, digits, seq, on = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9] == '1'
local limit, cscore, cid = tonumber(ARGV[10]), ARGV[11], ARGV[12]
local member = channel .. ':' .. digits
local stored = tonumber(rcall('HGET', KEYS[1], member) or '0')
local newer = seq > math.abs(stored)
local active = (newer and on) or (not newer and stored > 0)
${RANK_OF}
local found, more, bscore, bid = {}, 0, '', ''
if active then
  local index = base .. ':rcpt:' .. member
  if tenant ~= '' then index = base .. ':t:' .. tenant .. ':scheduled:r:' .. digits end
  local pos = 0
  if cscore ~= '' then pos = rank_of(index, cscore, cid, true) end
  local page = rcall('ZRANGE', index, pos, pos + limit - 1, 'WITHSCORES')
  for i = 1, #page, 2 do
    local id = page[i]
    bscore, bid = page[i + 1], id
    local json = rcall('GET', base .. ':m:' .. id)
    local ok, rec = false, nil
    if json then ok, rec = pcall(cjson.decode, json) end
    if ok and rec.status == 'scheduled' and rec.channel == channel and (tenant == '' or rec.tenant == tenant) then
      found[#found + 1] = rec
    end
  end
  if #page == 2 * limit then more = 1 end
end

if newer then rcall('HSET', KEYS[1], member, on and seq or -seq) end
local reply = { more, bscore, bid }
for _, rec in ipairs(found) do
  stop_opted_out(base .. ':m:' .. rec.id, rec)
  reply[#reply + 1] = rec.id
end
return reply
`);
