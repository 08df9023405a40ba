-- The deployment-wide cardinality caps (collector/store/capping.py): which values of one
-- app and day count as themselves. One call per app and day: every key is in its slot.
--
-- KEYS: the cap sets (keys.cap_set), one per kind asked.
-- ARGV[1]: expire-at of the sets; then per key: its cap, n, and n values.
-- Returns one flag per value, in order: 1 counted as itself (already in the set, or added
-- while the set held fewer than the cap), 0 counted as (other).
--
-- A set only grows, and only while below its cap: a value once admitted stays admitted,
-- one refused stays refused. So a batch asked again (a retry, a journal replay) gets the
-- same answers and writes the very same counts.

local at = tonumber(ARGV[1])
local out = {}
local a = 2
for i = 1, #KEYS do
  local key, cap, n = KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local size = redis.call('SCARD', key)
  for j = a, a + n - 1 do
    if redis.call('SISMEMBER', key, ARGV[j]) == 1 then
      out[#out + 1] = 1
    elseif size < cap then
      redis.call('SADD', key, ARGV[j])
      size = size + 1
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
  a = a + n
  if at > 0 then redis.call('EXPIREAT', key, at) end
end
return out
