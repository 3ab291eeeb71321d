import { transition } from './prelude.js';

/**
 * Final records whose retention has passed leave every index (the provider-id index and the
 * receipt lookups included) and are deleted, at most `limit` per call. Every record is read before
 * the first delete; one that cannot be decoded only leaves the expiring set (its index entries
 * point at nothing and lists skip them). KEYS[1]: the partition's expiring set. ARGV[5]: limit.
 * Reply: { expired, examined }.
 */
export const expireMessages = transition(`
local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local records = {}
for i, id in ipairs(due) do
  local json = rcall('GET', base .. ':m:' .. id)
  local ok, rec = false, nil
  if json then ok, rec = pcall(cjson.decode, json) end
  records[i] = ok and FINAL[rec.status] and rec or false
end
local expired = 0
for i, id in ipairs(due) do
  local rec = records[i]
  if rec then
    unindex(rec)
    if rec.providerMessageId then
      rcall('HDEL', base .. ':pid', rec.providerMessageId)
      rcall('ZREM', base .. ':receipt-lookups', id)
    end
    rcall('DEL', base .. ':m:' .. id)
    expired = expired + 1
  else
    rcall('ZREM', KEYS[1], id)
  end
end
return { expired, #due }
`);
