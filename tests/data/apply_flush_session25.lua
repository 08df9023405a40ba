-- Media sessions, the flush script's part (collector/features/media.py; loaded by
-- collector/store/flush_script.py in front of collector/store/apply_flush.lua).
--
-- A media session's distinct seconds (ws) are cumulative, so its counts are functions of
-- its best progress so far: the session hash keeps that per session, with the bucket
-- prefixes of its first flush, and a session's new progress adds only the difference
-- of each count (views: 1 once started; watched_s; and with a known duration the
-- completion sum in thousandths, its histogram bin, completed, completion_n). The
-- metric keys are written under the stored prefixes: same hash tag, same slot.
-- The metric names are those of collector/store/names.py.

-- {upper bound as a fraction of the duration, field}, lowest first: filled in at load
-- from names.COMPLETION_BINS.
local COMPLETION_BINS = {{0.25, 'completion_0_25'}, {0.5, 'completion_25_50'}, {0.75, 'completion_50_75'}, {0.9, 'completion_75_90'}, {1.0, 'completion_90_100'}}

local function session_counts(ws, dur, started, percent)
  local c = {views = started, watched_s = ws}
  if dur > 0 then
    local ratio = math.min(ws / dur, 1)
    c.completion_n = 1
    c.completion_milli = math.floor(ratio * 1000 + 0.5)
    local bin
    for _, b in ipairs(COMPLETION_BINS) do  -- the last bin takes 100 %
      bin = b[2]
      if ratio < b[1] then break end
    end
    c[bin] = 1
    if ws * 100 >= percent * dur then c.completed = 1 end
  end
  return c
end

-- Session deltas of one op are summed per key and field, then written once: many
-- sessions share the counters hash and their labels' fields.
local function apply_session(state_key, arg, sums, expiry)
  local s = cjson.decode(arg)
  local ms, ws, dur, started, prefixes, targets, percent = s[1], s[2], s[3], s[4], s[5], s[6], s[7]
  local old = redis.call('HGET', state_key, ms)
  local before = {}
  if old then
    local o = cjson.decode(old)
    prefixes = o[4]
    if ws <= o[1] and dur <= o[2] and started <= o[3] then return end
    before = session_counts(o[1], o[2], o[3], percent)
    ws, dur, started = math.max(ws, o[1]), math.max(dur, o[2]), math.max(started, o[3])
  end
  redis.call('HSET', state_key, ms, cjson.encode({ws, dur, started, prefixes}))
  local after = session_counts(ws, dur, started, percent)
  for name, _ in pairs(before) do if after[name] == nil then after[name] = 0 end end
  for name, n in pairs(after) do
    local delta = n - (before[name] or 0)
    if delta ~= 0 then
      for _, p in ipairs(prefixes) do
        for _, t in ipairs(targets) do
          local key = p[1] .. ':' .. t[1]
          local field = name
          if t[2] ~= '' then field = name .. ':' .. t[2] end
          local fields = sums[key]
          if not fields then fields = {}; sums[key] = fields; expiry[key] = p[2] end
          fields[field] = (fields[field] or 0) + delta
        end
      end
    end
  end
end

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
