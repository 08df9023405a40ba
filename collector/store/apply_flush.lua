-- The flush script (collector/store/flusher.py), after the media session functions of
-- collector/features/media_sessions.lua (collector/store/flush_script.py joins them).
--
-- KEYS[1]: the writer's sequence marker in this slot; KEYS[2..]: target keys.
-- ARGV[1]: flush sequence; ARGV[2]: marker TTL; then for each target key:
--   kind ('h': hash increments, 'p': HyperLogLog adds, 's': media sessions), expire-at
--   (0: keep), n, and n field/increment pairs ('h'), n elements ('p') or n sessions ('s',
--   the key is the slot's session hash; each session one JSON argument, see session_arg).
-- The marker is advanced before the writes: if a write failed half way (it cannot
-- for well-formed input), a retry must not count the first half twice.

local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local a = 3
for i = 2, #KEYS do
  local key, kind, at, n = KEYS[i], ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  if kind == 'h' then
    for j = a, a + 2 * n - 1, 2 do
      redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1])
    end
    a = a + 2 * n
  elseif kind == 's' then
    local sums, expiry = {}, {}
    for j = a, a + n - 1 do apply_session(key, ARGV[j], sums, expiry) end
    for k, fields in pairs(sums) do
      for field, delta in pairs(fields) do
        if delta ~= 0 then redis.call('HINCRBY', k, field, delta) end
      end
      if expiry[k] > 0 then redis.call('EXPIREAT', k, expiry[k]) end
    end
    a = a + n
  else
    for j = a, a + n - 1, 1000 do  -- chunks keep unpack() far below Lua's stack limit
      redis.call('PFADD', key, unpack(ARGV, j, math.min(j + 999, a + n - 1)))
    end
    a = a + n
  end
  if at > 0 then redis.call('EXPIREAT', key, at) end
end
return 1
