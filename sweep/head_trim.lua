-- head_trim.lua: remove a run of expired jobs at the head of a queue with
-- one LTRIM, without reading their payloads into Lua.
--
-- The caller read the queue from its head and judged its first k jobs
-- expired (the common case where every job has the same TTL: the oldest are
-- at the head). Since then workers may have popped some of them and
-- producers pushed at the tail. The script finds the run's last job with
-- LPOS (its last occurrence within k of the head), checks that the list's head is the job of the run it must then be
-- (by SHA1), and that every remaining job's deadline key still holds the
-- value judged and, by Redis's clock, is due; only then does it trim the run
-- off. On any mismatch it writes nothing and answers an empty array: the
-- caller falls back to remove_expired.lua.
--
-- KEYS[1]        the queue list
-- KEYS[2]        the failed list; written only when ARGV[1] == "1"
-- KEYS[3]        the journal list; written only when ARGV[2] == "1"
-- KEYS[4]        the stats hash (<ns>:resque-expire:stats): HINCRBY of field
--                ARGV[4] by the number of jobs removed, when ARGV[4] ~= ""
-- KEYS[4+i]      job i's expiration key (i = 1..k, in list order)
-- ARGV[1]        "1": push a failure entry per removed job onto KEYS[2]
-- ARGV[2]        "1": push an archive record per removed job onto KEYS[3]
-- ARGV[3]        the last job's payload (for LPOS)
-- ARGV[4]        the stats field counting this queue's removals, or ""
-- ARGV[4+5(i-1)+1..5]  job i: the SHA1 of its payload, its deadline value
--                as judged, when it is due (Unix ms, deadline + grace),
--                failure entry, archive record
--
-- Returns k codes (1 removed, 0 gone: a worker popped it first), or an
-- empty array when nothing was removed and the caller must fall back.
-- Refuses, writing nothing, when the user may not run one of its writes or
-- a key it writes holds another type (see remove_expired.lua).
local list = KEYS[1]
local to_failed = ARGV[1] == '1'
local journal = ARGV[2] == '1'
local stats, stats_field = KEYS[4], ARGV[4]
local k = (#ARGV - 4) / 5
if k < 1 then return {} end
local function arg(i, f) return ARGV[4 + 5 * (i - 1) + f] end

do
  local checks = {{'lpos', list, list, list}, {'lindex', list, list, list}, {'ltrim', list, list, list},
    {'pttl', KEYS[5], KEYS[5], KEYS[5]}}
  if stats_field ~= '' then checks[#checks + 1] = {'hincrby', stats, stats, stats} end
  if to_failed then checks[#checks + 1] = {'rpush', KEYS[2], KEYS[2], KEYS[2]} end
  if journal then checks[#checks + 1] = {'rpush', KEYS[3], KEYS[3], KEYS[3]} end
  -- The deadline keys in one check a command (PTTL reads keys as MGET
  -- does: its command is checked above).
  local refused = denied(checks, 'removed') or denied_keys('mget', 5, 4 + k, 'removed') or
    denied_keys('del', 5, 4 + k, 'removed')
  if refused then return refused end
end
for _, w in ipairs({{to_failed, KEYS[2], 'list'}, {journal, KEYS[3], 'list'}, {stats_field ~= '', stats, 'hash'}}) do
  if w[1] then
    local t = redis.call('TYPE', w[2])['ok']
    if t ~= 'none' and t ~= w[3] then
      return redis.error_reply('ERR resque-expire: ' .. w[2] .. ' is a ' .. t .. ', not a ' .. w[3] .. '; nothing was removed')
    end
  end
end

-- Where the run ends now, and how many of its jobs workers popped.
-- Its last occurrence among the first k: the run may hold the same job twice.
local found = redis.call('LPOS', list, ARGV[3], 'COUNT', 0, 'MAXLEN', k)
if #found == 0 then return {} end
local e = found[#found]
local popped = k - 1 - e
local head = redis.call('LINDEX', list, 0)
if not head or redis.sha1hex(head) ~= arg(popped + 1, 1) then return {} end

-- Every remaining job still judged expired, and due by Redis's clock.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keys = {}
for i = popped + 1, k do keys[#keys + 1] = KEYS[4 + i] end
local values = redis.call('MGET', unpack(keys))
for j = 1, #keys do
  local i = popped + j
  if values[j] ~= arg(i, 2) or now_ms < tonumber(arg(i, 3)) then
    return {}
  end
end
local ttls = {}
for j, key in ipairs(keys) do ttls[j] = redis.call('PTTL', key) end

-- The writes, each undone (in reverse) should a later one fail: the pushes,
-- the deadline keys' DEL, and last the trim (write, push, put_back and
-- undone come from internal/once's envelope).
local function pushed(f)
  local items = {}
  for i = popped + 1, k do items[#items + 1] = arg(i, f) end
  return items
end
if to_failed then push(KEYS[2], pushed(4)) end
if journal then push(KEYS[3], pushed(5)) end
if stats_field ~= '' then
  local counted = false
  write(function()
    redis.call('HINCRBY', stats, stats_field, #keys)
    counted = true
  end, function()
    if counted then redis.pcall('HINCRBY', stats, stats_field, -#keys) end
  end)
end
local deleted = false
write(function()
  redis.call('DEL', unpack(keys))
  deleted = true
end, function()
  if deleted then
    for j, key in ipairs(keys) do put_back(key, values[j], ttls[j]) end
  end
end)
write(function() redis.call('LTRIM', list, e + 1, -1) end)
local refused = undone('removed')
if refused then return refused end

local codes = {}
for i = 1, k do codes[i] = (i > popped) and 1 or 0 end
return codes
