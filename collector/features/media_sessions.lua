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
local COMPLETION_BINS = ${completion_bins}

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
  local names, deltas = {}, {}  -- the counts that changed, and by how much
  for name, n in pairs(after) do
    local delta = n - (before[name] or 0)
    if delta ~= 0 then
      local i = #names + 1
      names[i], deltas[i] = name, delta
    end
  end
  if #names == 0 then return end  -- no key touched (nor given its expiry)
  -- Each target's field names made once, and each (prefix, target) key once: the
  -- strings are the script's own cost, some hundred instructions each (issue 17).
  -- Numeric loops, not ipairs: its iterator is a C function called once per element.
  local counts = #names
  for ti = 1, #targets do
    local t = targets[ti]
    local label, fields = t[2], {}
    for i = 1, counts do fields[i] = label == '' and names[i] or names[i] .. ':' .. label end
    for pi = 1, #prefixes do
      local p = prefixes[pi]
      local key = p[1] .. ':' .. t[1]
      local sum = sums[key]
      if not sum then sum = {}; sums[key] = sum; expiry[key] = p[2] end
      for i = 1, counts do
        local field = fields[i]
        sum[field] = (sum[field] or 0) + deltas[i]
      end
    end
  end
end
