-- remove_expired.lua: atomically remove one page's expired jobs from a list.
--
-- The caller read the page with LRANGE and judged each candidate expired.
-- Between that read and this script workers may have popped jobs at the head
-- (shifting every index left) and producers pushed at the tail, so the script
-- re-finds each candidate near where it was read, in order, and removes it
-- only if its expiration key still holds the value that was judged expired
-- and, by Redis's own clock (TIME), the time it may go has come. Victims are
-- overwritten with a marker (LSET) and all dropped by one LREM of the marker,
-- scanning from the nearer end of the list; no other client can ever see a
-- marker, because it all happens inside this one script.
--
-- KEYS[1]        the list: a queue, or a resque-scheduler delayed bucket
-- KEYS[2]        the failed list; written only when ARGV[2] == "1"
-- KEYS[3]        the journal list; written only when ARGV[3] == "1"
-- KEYS[4]        the delayed schedule zset; used only when ARGV[4] ~= ""
-- KEYS[5]        the stats hash (<ns>:resque-expire:stats): HINCRBY of field
--                ARGV[6] by the number of jobs removed, when ARGV[6] ~= ""
-- KEYS[5+i]      candidate i's expiration key (i = 1..n)
-- KEYS[5+n+i]    candidate i's timestamps:<payload> set (delayed buckets only)
-- ARGV[1]        marker: a value no payload can equal
-- ARGV[2]        "1": push a failure entry per removed job onto KEYS[2]
-- ARGV[3]        "1": push an archive record per removed job onto KEYS[3]
-- ARGV[4]        the bucket's Unix second for delayed buckets, "" for queues
-- ARGV[5]        slack: how far around the read positions to look
-- ARGV[6]        the stats field counting this list's removals,
--                "<action>:<queue>" (action: deleted, archived, failed;
--                the queue may itself hold ':'), "" to count nothing
-- ARGV[6+6(i-1)+1..6]  candidate i, in list order: payload, index when read,
--                deadline value as judged ("" = judged with no key, under
--                --max-age), due: the Unix time in milliseconds from which
--                Redis's clock lets it go (deadline + grace, or enqueue time
--                + max age), failure entry, archive record
--
-- Returns an array of n codes: 1 removed; 0 gone (no longer in the list:
-- a worker took it); 2 kept, because its expiration key changed since it was
-- judged (a new deadline was set, or a missing one appeared); 3 kept, because
-- by Redis's clock it is not due yet. Then one more element: the script's
-- own time in microseconds, what the caller sizes its next script by (the
-- round trip would count the other clients' commands queued before it).
--
-- All or nothing: Redis does not roll a script back, so before its first
-- write the script checks that the user may run every command it will run
-- on every key (redis.acl_check_cmd, Redis >= 7) and that every key it writes
-- holds the right type, and refuses otherwise, writing nothing. Its writes
-- then run under pcall; should one still fail, the writes before it are
-- undone in reverse order and the script answers the error. It runs inside
-- internal/once's envelope, which gives it write, undone, push, put_back.
local function micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local started = micros()
-- The codes, then the script's own time (TIME is the wall clock: a step
-- back must not make it negative).
local function answer(codes)
  codes[#codes + 1] = math.max(0, micros() - started)
  return codes
end
local marker = ARGV[1]
local to_failed = ARGV[2] == '1'
local journal = ARGV[3] == '1'
local bucket = ARGV[4]
local slack = tonumber(ARGV[5])
local stats_field = ARGV[6]
local stats = KEYS[5]
local base = 6
local n = (#ARGV - base) / 6
local codes = {}
if n < 1 then return answer(codes) end
local list = KEYS[1]
local ekeys = {}
for i = 1, n do ekeys[i] = KEYS[5 + i] end

-- Permissions, for every command the script may run, on every key.
local checks = {{'lrange', list, '0', '0'}, {'lset', list, '0', ''}, {'llen', list},
  {'lrem', list, '0', ''}, {'mget', unpack(ekeys)}, {'pttl', ekeys[1]}, {'exists', ekeys[1]}}
for i = 1, n do checks[#checks + 1] = {'del', ekeys[i]} end
if to_failed then checks[#checks + 1] = {'rpush', KEYS[2], ''} end
if journal then checks[#checks + 1] = {'rpush', KEYS[3], ''} end
if stats_field ~= '' then checks[#checks + 1] = {'hincrby', stats, stats_field, '1'} end
if bucket ~= '' then
  checks[#checks + 1] = {'zrem', KEYS[4], ''}
  checks[#checks + 1] = {'exists', list}
  for i = 1, n do checks[#checks + 1] = {'srem', KEYS[5 + n + i], ''} end
end
local refused = denied(checks, 'removed')
if refused then return refused end

-- Types: every key written besides the list.
local function refuse_wrong_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('ERR resque-expire: ' .. key .. ' is a ' .. t .. ', not a ' .. want .. '; nothing was removed')
  end
  return nil
end
local bad = nil
if to_failed then bad = refuse_wrong_type(KEYS[2], 'list') end
if not bad and journal then bad = refuse_wrong_type(KEYS[3], 'list') end
if not bad and stats_field ~= '' then bad = refuse_wrong_type(stats, 'hash') end
if not bad and bucket ~= '' then
  bad = refuse_wrong_type(KEYS[4], 'zset')
  for i = 1, n do
    if bad then break end
    bad = refuse_wrong_type(KEYS[5 + n + i], 'set')
  end
end
if bad then return bad end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local first = tonumber(ARGV[base + 2])
local last = tonumber(ARGV[base + 6 * (n - 1) + 2])
local from = first - slack
if from < 0 then from = 0 end
local win = redis.call('LRANGE', list, from, last + slack)

-- Every candidate's deadline, in one call. MGET answers false both for a
-- missing key and for a key of another type; only candidates judged with no
-- key need the difference, so they alone are asked EXISTS below.
local values = redis.call('MGET', unpack(ekeys))

-- Choose the victims; nothing is written yet.
local pos = 0       -- window position (1-based) of the last candidate found
local victims = {}  -- {list index, payload}
local judged = {}   -- expiration key -> value, for keys of removed jobs
local to_delete, failures, records, srems = {}, {}, {}, {}
for i = 1, n do
  local a = base + 6 * (i - 1)
  local payload, deadline, due = ARGV[a + 1], ARGV[a + 3], tonumber(ARGV[a + 4])
  local found = nil
  for j = pos + 1, #win do
    if win[j] == payload then
      found = j
      break
    end
  end
  if not found then
    codes[i] = 0
  else
    pos = found
    local ekey = ekeys[i]
    local cur = judged[ekey]
    if cur == nil then
      cur = values[i]
      if cur == false then
        cur = ''
        if deadline == '' and redis.call('EXISTS', ekey) == 1 then
          cur = '\0not-a-string'
        end
      end
    end
    if cur ~= deadline then
      codes[i] = 2
    elseif now_ms < due then
      codes[i] = 3
    else
      codes[i] = 1
      victims[#victims + 1] = {from + found - 1, payload}
      if cur ~= '' and judged[ekey] == nil then
        judged[ekey] = cur
        to_delete[#to_delete + 1] = ekey
      end
      if to_failed then failures[#failures + 1] = ARGV[a + 5] end
      if journal then records[#records + 1] = ARGV[a + 6] end
      if bucket ~= '' then srems[#srems + 1] = KEYS[5 + n + i] end
    end
  end
end
if #victims == 0 then return answer(codes) end

-- What deleting the expiration keys would lose, to put back on an undo.
local ttls = {}
for k, key in ipairs(to_delete) do ttls[k] = redis.call('PTTL', key) end

-- The writes, each undone (in reverse) should a later one fail (write,
-- push and put_back come from internal/once's envelope).
push(KEYS[2], failures)
push(KEYS[3], records)
local marked = 0
write(function()
  for m, v in ipairs(victims) do
    redis.call('LSET', list, v[1], marker)
    marked = m
  end
end, function()
  for m = 1, marked do redis.pcall('LSET', list, victims[m][1], victims[m][2]) end
end)
local member, unset = 'delayed:' .. bucket, {}
write(function()
  for _, key in ipairs(srems) do
    if redis.call('SREM', key, member) == 1 then unset[#unset + 1] = key end
  end
end, function()
  for _, key in ipairs(unset) do redis.pcall('SADD', key, member) end
end)
local deleted = 0
write(function()
  for k, key in ipairs(to_delete) do
    redis.call('DEL', key)
    deleted = k
  end
end, function()
  for k = 1, deleted do put_back(to_delete[k], judged[to_delete[k]], ttls[k]) end
end)
-- The removal counter, which Prometheus reads as
-- resque_expire_jobs_removed_total: counted in the same script as the
-- removal, so it is exact whoever runs the sweep, and undone with it.
if stats_field ~= '' then
  local counted = false
  write(function()
    redis.call('HINCRBY', stats, stats_field, #victims)
    counted = true
  end, function()
    if counted then redis.pcall('HINCRBY', stats, stats_field, -#victims) end
  end)
end
-- LREM stops once it has found them all: scan from the end that reaches
-- all the markers soonest. It is the last write that cannot be undone, so
-- everything before it is undone should it fail.
local first_victim, last_victim = victims[1][1], victims[#victims][1]
write(function()
  local len = redis.call('LLEN', list)
  if last_victim < len - first_victim then
    redis.call('LREM', list, #victims, marker)
  else
    redis.call('LREM', list, -#victims, marker)
  end
end)
local refused = undone('removed')
if refused then return refused end
-- An emptied bucket leaves the schedule. Should this fail, the schedule
-- names an empty bucket, which resque-scheduler cleans up by itself.
if bucket ~= '' and redis.call('EXISTS', list) == 0 then
  redis.pcall('ZREM', KEYS[4], bucket)
end
return answer(codes)
