-- remove_expired.lua: atomically remove one page's expired jobs from a list.
--
-- The caller read the page with LRANGE and judged each candidate expired.
-- Between that read and this script workers may have popped jobs at the head
-- (shifting every index left) and producers pushed at the tail, so the script
-- re-finds each candidate near where it was read, in order, and removes it
-- only if its expiration key still holds the value that was judged expired.
-- Victims are overwritten with a marker (LSET) and all dropped by one LREM of
-- the marker, scanning from the nearer end of the list; no other client can
-- ever see a marker, because it all happens inside this one script.
--
-- KEYS[1]        the list: a queue, or a resque-scheduler delayed bucket
-- KEYS[2]        the failed list; written only when ARGV[2] == "1"
-- KEYS[3]        the journal list; written only when ARGV[3] == "1"
-- KEYS[4]        the delayed schedule zset; used only when ARGV[4] ~= ""
-- KEYS[4+i]      candidate i's expiration key (i = 1..n)
-- KEYS[4+n+i]    candidate i's timestamps:<payload> set (delayed buckets only)
-- ARGV[1]        marker: a value no payload can equal
-- ARGV[2]        "1": push a failure entry per removed job onto KEYS[2]
-- ARGV[3]        "1": push an archive record per removed job onto KEYS[3]
-- ARGV[4]        the bucket's Unix second for delayed buckets, "" for queues
-- ARGV[5]        slack: how far around the read positions to look
-- ARGV[5+5(i-1)+1..5]  candidate i, in list order: payload, index when read,
--                deadline value as judged ("" = judged with no key, under
--                --max-age), failure entry, archive record
--
-- Returns an array of n codes: 1 removed; 0 gone (no longer in the list:
-- a worker took it); 2 kept, because its expiration key changed since it was
-- judged (a new deadline was set, or a missing one appeared).
local marker = ARGV[1]
local to_failed = ARGV[2] == '1'
local journal = ARGV[3] == '1'
local bucket = ARGV[4]
local slack = tonumber(ARGV[5])
local n = (#ARGV - 5) / 5
local codes = {}
if n < 1 then return codes end

-- Redis does not roll a script back: a write that fails after the LSETs
-- below would leave markers in the list in place of jobs. So every key this
-- script writes besides the list is checked before the first write, and the
-- script refuses (writing nothing) when one holds another type.
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
if not bad and bucket ~= '' then
  bad = refuse_wrong_type(KEYS[4], 'zset')
  for i = 1, n do
    if bad then break end
    bad = refuse_wrong_type(KEYS[4 + n + i], 'set')
  end
end
if bad then return bad end

local first = tonumber(ARGV[7])
local last = tonumber(ARGV[5 + 5 * (n - 1) + 2])
local from = first - slack
if from < 0 then from = 0 end
local win = redis.call('LRANGE', KEYS[1], from, last + slack)

-- Every candidate's deadline, in one call. MGET answers false both for a
-- missing key and for a key of another type; only candidates judged with no
-- key need the difference, so they alone are asked EXISTS below.
local ekeys = {}
for i = 1, n do ekeys[i] = KEYS[4 + i] end
local values = redis.call('MGET', unpack(ekeys))

local pos = 0       -- window position (1-based) of the last candidate found
local victims = 0
local first_victim, last_victim = nil, 0
local deleted = {}  -- expiration keys deleted by this script: key -> old value
local to_delete, failures, records = {}, {}, {}

for i = 1, n do
  local a = 5 + 5 * (i - 1)
  local payload, deadline = ARGV[a + 1], ARGV[a + 3]
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
    local cur = deleted[ekey]
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
    else
      redis.call('LSET', KEYS[1], from + found - 1, marker)
      victims = victims + 1
      last_victim = from + found - 1
      if first_victim == nil then first_victim = last_victim end
      codes[i] = 1
      if cur ~= '' and deleted[ekey] == nil then
        deleted[ekey] = cur
        to_delete[#to_delete + 1] = ekey
      end
      if to_failed then failures[#failures + 1] = ARGV[a + 4] end
      if journal then records[#records + 1] = ARGV[a + 5] end
      if bucket ~= '' then
        redis.call('SREM', KEYS[4 + n + i], 'delayed:' .. bucket)
      end
    end
  end
end

-- Variadic writes, in slices small enough for unpack's stack.
local function each_slice(list, fn)
  for k = 1, #list, 1000 do
    fn(unpack(list, k, math.min(k + 999, #list)))
  end
end
each_slice(to_delete, function(...) redis.call('DEL', ...) end)
each_slice(failures, function(...) redis.call('RPUSH', KEYS[2], ...) end)
each_slice(records, function(...) redis.call('RPUSH', KEYS[3], ...) end)

if victims > 0 then
  -- LREM stops once it has found them all: scan from the end that reaches
  -- all the markers soonest.
  local len = redis.call('LLEN', KEYS[1])
  if last_victim < len - first_victim then
    redis.call('LREM', KEYS[1], victims, marker)
  else
    redis.call('LREM', KEYS[1], -victims, marker)
  end
  if bucket ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('ZREM', KEYS[4], bucket)
  end
end
return codes
