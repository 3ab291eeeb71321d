/**
 * Lua: `rank_of(key, score, id, inclusive)`, the number of the sorted set's members ordered
 * before the boundary (score, id), with the boundary itself when inclusive. Uses the script's
 * `rcall`.
 */
export const RANK_OF = `
local function rank_of(key, score, id, inclusive)
  local lo = rcall('ZCOUNT', key, '-inf', '(' .. score)
  local hi = rcall('ZCOUNT', key, '-inf', score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = rcall('ZRANGE', key, mid, mid)[1]
    if m < id or (inclusive and m == id) then lo = mid + 1 else hi = mid end
  end
  return lo
end
`;

/**
 * One page of an index, from a (score, id) boundary, in either direction, without scanning:
 * the boundary's rank is found by ZCOUNT (O(log n)) plus a binary search among the members that
 * share its score (O(log n) steps of O(log n)): O(log² n) at worst.
 * KEYS[1]: index. ARGV: base, dir (asc|desc), limit, cursorScore ('' = none), cursorId,
 * min score, max score, channel ('' = any; when the index is a recipient's or a receipt's),
 * receipt status ('' = any; when the index is a recipient's).
 * Reply: { more (0|1), boundScore, boundId, {id, score, record JSON}… }
 */
export const listPage = `
local key, base, dir, limit = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local cscore, cid, minS, maxS, channel, receipt = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9] or ''
local rcall = redis.call
local SCAN_CAP = 5000

${RANK_OF}
local pos, stop
if dir == 'asc' then
  pos = rcall('ZCOUNT', key, '-inf', '(' .. minS)
  if cscore ~= '' then pos = math.max(pos, rank_of(key, cscore, cid, true)) end
  stop = rcall('ZCOUNT', key, '-inf', maxS) - 1
else
  pos = rcall('ZCOUNT', key, '-inf', maxS) - 1
  if cscore ~= '' then pos = math.min(pos, rank_of(key, cscore, cid, false) - 1) end
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
    local json = rcall('GET', base .. ':m:' .. id)
    local keep = json ~= false
    if keep and (channel ~= '' or receipt ~= '') then
      local rec = cjson.decode(json)
      keep = (channel == '' or rec.channel == channel) and (receipt == '' or rec.receiptStatus == receipt)
    end
    if keep then found[#found + 1] = { id, score, json } end
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
