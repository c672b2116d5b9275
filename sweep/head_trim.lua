-- head_trim.lua: remove a run of expired jobs at the head of a queue with
-- one LTRIM, without reading their payloads into Lua.
--
-- The caller read the queue from its head and judged its first k jobs
-- expired (the common case where every job has the same TTL: the oldest are
-- at the head). Since then workers may have popped some of them and
-- producers pushed at the tail. The script finds the run's last job with
-- LPOS (its last occurrence within k of the head), checks that the list's
-- head is the job of the run it must then be (by SHA1), and that every
-- remaining job's deadline key still holds the value judged and, by Redis's
-- clock, is due; only then does it trim the run off. On any mismatch it
-- writes nothing and answers an empty array: the caller falls back to
-- remove_expired.lua.
--
-- The jobs' digests and deadlines come packed in one argument each, not
-- one argument a job: Redis turns every argument into a Lua string before
-- the script starts, and for a thousand jobs that cost more than the work.
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
-- ARGV[5]        the SHA1 (40 hex digits) of the payloads of the run's
--                first d jobs (d <= k), in order, one after the other: with
--                more than d - 1 of them popped since, the script falls back
-- ARGV[6]        each job's deadline value as judged, in order, joined by
--                "\n" (no value judged holds one)
-- ARGV[7]        when the last of them is due (Unix ms, deadline + grace)
-- ARGV[8..]      when ARGV[1] == "1", k failure entries; then, when
--                ARGV[2] == "1", k archive records (job i's the i-th)
--
-- Returns {p, t}: the run's first p jobs were gone (workers popped them)
-- and the other k - p removed, in t microseconds of the script's own time
-- (what the caller sizes its next run by); or an empty array when nothing
-- was removed and the caller must fall back.
-- Refuses, writing nothing, when the user may not run one of its writes or
-- a key it writes holds another type (see remove_expired.lua).
local list = KEYS[1]
local to_failed = ARGV[1] == '1'
local journal = ARGV[2] == '1'
local stats, stats_field = KEYS[4], ARGV[4]
local k = #KEYS - 4
if k < 1 then return {} end
local digests, judged, due = ARGV[5], ARGV[6], tonumber(ARGV[7])
local function micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local started = micros()

do
  local checks = {{'lpos', list, list, list}, {'lindex', list, list, list}, {'ltrim', list, list, list}}
  if stats_field ~= '' then checks[#checks + 1] = {'hincrby', stats, stats, stats} end
  if to_failed then checks[#checks + 1] = {'rpush', KEYS[2], KEYS[2], KEYS[2]} end
  if journal then checks[#checks + 1] = {'rpush', KEYS[3], KEYS[3], KEYS[3]} end
  -- The deadline keys in one check for DEL, which follows other writes.
  -- (MGET reads before any write: should it be refused, the pcall below
  -- answers NOPERM with nothing written.)
  local refused = denied(checks, 'removed') or denied_keys('del', 5, 4 + k, 'removed')
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
if 40 * popped >= #digests then return {} end
local head = redis.call('LINDEX', list, 0)
if not head or redis.sha1hex(head) ~= string.sub(digests, 40 * popped + 1, 40 * popped + 40) then return {} end

-- Every remaining job still judged expired, and due by Redis's clock.
if math.floor(started / 1000) < due then return {} end
local keys = {unpack(KEYS, 5 + popped, 4 + k)}
local values = redis.pcall('MGET', unpack(keys))
if values.err then
  if acl_error(values.err) then return nope('mget', keys[1], 'removed') end
  return redis.error_reply(values.err)
end
-- The values now, joined, must be the judged ones of the remaining jobs:
-- the end of ARGV[6] from a "\n". With no value holding a "\n" (one that
-- does was not judged so: it changed), the two have as many separators, so
-- each value equals its own job's.
for _, v in ipairs(values) do
  if not v or string.find(v, '\n', 1, true) then return {} end
end
local now = table.concat(values, '\n')
if popped == 0 then
  if now ~= judged then return {} end
elseif string.sub(judged, -#now) ~= now or string.sub(judged, -#now - 1, -#now - 1) ~= '\n' then
  return {}
end

-- The writes, each undone (in reverse) should a later one fail: first those
-- that can fail (the pushes and the count: out of memory, a counter that is
-- not a number), last the trim and the deadline keys' DEL, which cannot on
-- Redis 7: their permissions were checked above, LPOS checked the list's
-- type, DEL takes keys of any type, and once a script has written Redis no
-- longer refuses its writes for memory, a read-only replica or a failed
-- save. So the keys need no undo, and no PTTL a key. Redis 6.2 cannot check
-- permissions ahead: there the DEL goes first, undone by setting the keys
-- back with their PTTL should the LTRIM be refused (write, push, put_back
-- and undone come from internal/once's envelope).
local function pushed(from)
  return {unpack(ARGV, from + popped, from + k - 1)}
end
local entries = 8
if to_failed then
  push(KEYS[2], pushed(entries))
  entries = entries + k
end
if journal then push(KEYS[3], pushed(entries)) end
if stats_field ~= '' then
  local counted = false
  write(function()
    redis.call('HINCRBY', stats, stats_field, #keys)
    counted = true
  end, function()
    if counted then redis.pcall('HINCRBY', stats, stats_field, -#keys) end
  end)
end
if redis.acl_check_cmd then
  write(function()
    redis.call('LTRIM', list, e + 1, -1)
    redis.call('DEL', unpack(keys))
  end)
else
  local ttls = {}
  for j, key in ipairs(keys) do ttls[j] = redis.call('PTTL', key) end
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
end
local refused = undone('removed')
if refused then return refused end
-- (TIME is the wall clock: a step back must not make the time negative.)
return {popped, math.max(0, micros() - started)}
