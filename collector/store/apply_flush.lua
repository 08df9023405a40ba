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

-- The loops below run once per command (~5 per POST event), so they keep what they use in
-- locals (a global or a field costs a table lookup each time) and hand Redis strings as
-- they came: a Lua number given to redis.call is formatted back to text (snprintf, some
-- thousand instructions). bench/redis_instructions.py counts them.
local call, tonumber, unpack, min = redis.call, tonumber, unpack, math.min
local argv = ARGV

local seq = tonumber(argv[1])
local last = tonumber(call('GET', KEYS[1]) or '0')
if seq <= last then return 0 end
call('SET', KEYS[1], argv[1], 'EX', argv[2])

-- A 'b' item from argv[a] (after its kind); returns the index of the next item.
local function apply_buckets(a)
  local n = tonumber(argv[a])
  -- Per prefix: its keys' start (PREFIX:), and its expire-at as sent, nil for 0 (keep).
  local heads, expire_at = {}, {}
  for j = 1, n do
    heads[j] = argv[a + 2 * j - 1] .. ':'
    local at = argv[a + 2 * j]
    if tonumber(at) > 0 then expire_at[j] = at end
  end
  a = a + 2 * n + 1
  local groups = tonumber(argv[a])
  a = a + 1
  for _ = 1, groups do
    local kind, suffix, k = argv[a], argv[a + 1], tonumber(argv[a + 2])
    local hash = kind == 'h'
    local first = a + 3
    local stop = first + (hash and 2 * k or k) - 1
    for j = 1, n do
      local key = heads[j] .. suffix
      if hash then
        for i = first, stop, 2 do call('HINCRBY', key, argv[i], argv[i + 1]) end
      else
        for i = first, stop, 1000 do  -- chunks keep unpack() far below Lua's stack limit
          call('PFADD', key, unpack(argv, i, min(i + 999, stop)))
        end
      end
      local at = expire_at[j]
      if at then call('EXPIREAT', key, at) end
    end
    a = stop + 1
  end
  return a
end

-- A session count's number as the text redis.call would make of it (%.14g), made by the
-- cheaper %d when it is a whole number that %.14g writes in full (all of them: counts),
-- and once per call for each number: the same few deltas and expiries recur across a
-- call's keys, and a table lookup is far cheaper than snprintf (2.8 % of Redis'
-- instructions per POST-50 event: bench/RESULTS.md, session 27).
local format, floor = string.format, math.floor
local count_texts = {}
local function count_text(n)
  local text = count_texts[n]
  if text then return text end
  if n ~= n then return n end  -- NaN: no table key (never a count)
  text = n
  if n == floor(n) and n > -1e14 and n < 1e14 then text = format('%d', n) end
  count_texts[n] = text
  return text
end

-- An 's' item from argv[a] (after its kind); returns the index of the next item.
local function apply_sessions(a)
  local at, k = tonumber(argv[a]), tonumber(argv[a + 1])
  local sums, expiry = {}, {}
  for j = a + 2, a + k + 1 do apply_session(KEYS[2], argv[j], sums, expiry) end
  for key, fields in pairs(sums) do
    for field, delta in pairs(fields) do
      if delta ~= 0 then call('HINCRBY', key, field, count_text(delta)) end
    end
    if expiry[key] > 0 then call('EXPIREAT', key, count_text(expiry[key])) end
  end
  if at > 0 then call('EXPIREAT', KEYS[2], argv[a]) end  -- as sent: no number to format
  return a + k + 2
end

-- An 'i' item from argv[a] (after its kind); returns the index of the next item.
local function record_ids(a)
  local ttl, k = argv[a], tonumber(argv[a + 1])
  local first, stop = a + 2, a + k + 1
  for i = first, stop, 1000 do  -- chunks keep unpack() far below Lua's stack limit
    call('SADD', KEYS[4], unpack(argv, i, min(i + 999, stop)))
  end
  call('EXPIRE', KEYS[4], ttl)
  return stop + 1
end

local a = 3
while a <= #argv do
  local kind = argv[a]
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
