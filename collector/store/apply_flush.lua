-- The flush script (collector/store/flusher.py encode_calls), after the media session
-- functions of collector/features/media_sessions.lua (collector/store/flush_script.py joins them).
--
-- KEYS[1]: the writer's sequence marker in this slot; KEYS[2]: the slot's media session
-- hash; KEYS[3]: the slot's migration guard (keys.migration_guard), never written;
-- KEYS[4], in a call with an 'i' item: the slot's set of first sends' event ids.
-- ARGV[1]: flush sequence; ARGV[2]: marker TTL; then items:
--   'b', n, n (bucket prefix, expire-at) pairs, m, then m groups, each
--       'h', suffix, k, k field/increment pairs (HINCRBY), or
--       'p', suffix, k, k elements (PFADD):
--     a group is applied to the key PREFIX:SUFFIX of every prefix of its item, and each
--     such key gets EXPIREAT its prefix's expire-at (0: keep). The minute, hour and day
--     buckets of a minute share one item, so its deltas are sent once, not once per bucket.
--   's', expire-at, k, k sessions (JSON, see flusher.session_arg): media session
--     progress, kept in KEYS[2] and counted under the prefixes its record names.
--   'i', ttl, k, k event ids: first sends (collector/store/dedupe.py), added to the set
--     KEYS[4], which then expires in ttl seconds. In the call of the counts, after the
--     marker check: recorded exactly when those are counted, without a command of its own.
-- The prefixes carry the slot's hash tag (keys.bucket_prefix), so the keys built here are
-- in the declared keys' slot; the guard holds a call off a slot being migrated.
-- The marker is advanced before the writes: if a write failed half way (it cannot
-- for well-formed input), a retry must not count the first half twice.

local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])

-- A 'b' item from ARGV[a] (after its kind); returns the index of the next item.
local function apply_buckets(a)
  local n = tonumber(ARGV[a])
  local prefixes, expire_at = {}, {}
  for j = 1, n do
    prefixes[j], expire_at[j] = ARGV[a + 2 * j - 1], tonumber(ARGV[a + 2 * j])
  end
  a = a + 2 * n + 1
  local groups = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, groups do
    local kind, suffix, k = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    local first = a + 3
    local stop = first + (kind == 'h' and 2 * k or k) - 1
    for j = 1, n do
      local key = prefixes[j] .. ':' .. suffix
      if kind == 'h' then
        for i = first, stop, 2 do redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1]) end
      else
        for i = first, stop, 1000 do  -- chunks keep unpack() far below Lua's stack limit
          redis.call('PFADD', key, unpack(ARGV, i, math.min(i + 999, stop)))
        end
      end
      if expire_at[j] > 0 then redis.call('EXPIREAT', key, expire_at[j]) end
    end
    a = stop + 1
  end
  return a
end

-- An 's' item from ARGV[a] (after its kind); returns the index of the next item.
local function apply_sessions(a)
  local at, k = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local sums, expiry = {}, {}
  for j = a + 2, a + k + 1 do apply_session(KEYS[2], ARGV[j], sums, expiry) end
  for key, fields in pairs(sums) do
    for field, delta in pairs(fields) do
      if delta ~= 0 then redis.call('HINCRBY', key, field, delta) end
    end
    if expiry[key] > 0 then redis.call('EXPIREAT', key, expiry[key]) end
  end
  if at > 0 then redis.call('EXPIREAT', KEYS[2], at) end
  return a + k + 2
end

-- An 'i' item from ARGV[a] (after its kind); returns the index of the next item.
local function record_ids(a)
  local ttl, k = ARGV[a], tonumber(ARGV[a + 1])
  local first, stop = a + 2, a + k + 1
  for i = first, stop, 1000 do  -- chunks keep unpack() far below Lua's stack limit
    redis.call('SADD', KEYS[4], unpack(ARGV, i, math.min(i + 999, stop)))
  end
  redis.call('EXPIRE', KEYS[4], ttl)
  return stop + 1
end

local a = 3
while a <= #ARGV do
  local kind = ARGV[a]
  if kind == 'b' then
    a = apply_buckets(a + 1)
  elseif kind == 's' then
    a = apply_sessions(a + 1)
  elseif kind == 'i' then
    a = record_ids(a + 1)
  else
    return redis.error_reply('flush script: unknown item ' .. tostring(kind))
  end
end
return 1
