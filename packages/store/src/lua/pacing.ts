/**
 * Pacing of a channel, fleet-wide (every key in the global `{prefix}` slot). KEYS[1]: the
 * channel's hash: `tat` (GCRA's theoretical arrival time: when everything reserved so far has
 * left at the rate), `until` (a provider 429 paused the channel until then) and `recipients` (the
 * latest end of any recipient's pause, for workers that poll). Times are epoch ms with a fraction.
 */

/**
 * When one message may go. ARGV[1]: the message's hold key, ARGV[2]: its recipient's pause key,
 * ARGV[3]: now, ARGV[4]: units it costs (SMS segments), ARGV[5]: ms per unit (0 = no rate),
 * ARGV[6]: burst (ms of the rate that may leave at once), ARGV[7]: how long a hold outlives its time.
 *
 * A message told to wait keeps a hold (`r<time>`: a reserved slot, `p<time>`: waiting out a
 * pause); when its job comes back the hold is spent instead of reserving again. A reserved slot
 * is given up only when a pause began meanwhile. Reply: {'go'|'wait', time, fresh ('1' when decided now)}.
 */
export const paceMessage = `
local rcall = redis.call
local state, holdKey, recipientKey = KEYS[1], ARGV[1], ARGV[2]
local now, units, perUnit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local burst, grace = tonumber(ARGV[6]), tonumber(ARGV[7])

local function ms(t) return string.format('%.3f', t) end
local function wait(at, kind)
  rcall('SET', holdKey, kind .. ms(at), 'PX', math.ceil(at - now) + grace)
  return {'wait', ms(at), '1'}
end

local pausedUntil = tonumber(rcall('HGET', state, 'until') or 0)
local recipientUntil = 0
if recipientKey ~= '' then recipientUntil = tonumber(rcall('GET', recipientKey) or 0) end

local held = rcall('GET', holdKey)
if held then
  local at = tonumber(string.sub(held, 2))
  if at > now then return {'wait', ms(at), '0'} end
  if string.sub(held, 1, 1) == 'r' and pausedUntil <= now and recipientUntil <= now then
    rcall('DEL', holdKey)
    return {'go', ms(at), '0'}
  end
  rcall('DEL', holdKey)
end
-- a recipient's pause delays its own messages only: no slot of the channel is taken meanwhile
if recipientUntil > now then return wait(recipientUntil, 'p') end
local start = math.max(now, pausedUntil)
if perUnit <= 0 then
  if start > now then return wait(start, 'p') end
  return {'go', ms(now), '1'}
end
local tat = tonumber(rcall('HGET', state, 'tat') or 0)
local slot = math.max(start, tat - burst)
rcall('HSET', state, 'tat', ms(math.max(tat, start) + units * perUnit))
if slot > now then return wait(slot, 'r') end
return {'go', ms(now), '1'}
`;

/** Pauses the channel until ARGV[1] (a later pause already there stands). */
export const pauseChannel = `
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'until', ARGV[1]) end
return 1
`;

/** Pauses one recipient of the channel. ARGV[1]: its pause key, ARGV[2]: until, ARGV[3]: now. */
export const pauseRecipient = `
local untilMs, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local current = tonumber(redis.call('GET', ARGV[1]) or 0)
if untilMs > current then redis.call('SET', ARGV[1], ARGV[2], 'PX', math.max(1, math.ceil(untilMs - now))) end
local latest = tonumber(redis.call('HGET', KEYS[1], 'recipients') or 0)
if untilMs > latest then redis.call('HSET', KEYS[1], 'recipients', ARGV[2]) end
return 1
`;
