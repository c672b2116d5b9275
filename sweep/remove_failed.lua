-- remove_failed.lua: atomically remove one page's expired failure entries
-- from a failed list (<ns>:failed, or a multi-queue backend's
-- <ns>:<queue>_failed).
--
-- The caller read the page with LRANGE and judged each candidate. Between
-- that read and this script workers may have pushed failures at the tail,
-- and resque-web or Resque's API may have removed or retried entries (both
-- address entries by index: remove(i) is LSET i "" then LREM 1 "", requeue(i)
-- is LINDEX i then LSET i with "retried_at" added). So the script addresses
-- entries by value, never by index alone: it re-finds each candidate near
-- where it was read, in order, byte for byte (an entry retried or blanked
-- meanwhile no longer matches and is kept), and removes it only if its
-- job's deadline key still holds the value that was judged expired and, by
-- Redis's own clock (TIME), the time it may go has come. Victims are
-- overwritten with a marker (LSET) and all dropped by one LREM of the
-- marker, scanning from the nearer end; no other client can see a marker,
-- because it all happens inside this one script. Resque's own "" sentinel
-- is never a candidate (it is not a failure entry), so a remove(i) caught
-- between its LSET and LREM still finds its "" afterwards.
--
-- KEYS[1]      the failed list
-- KEYS[2]      the journal list; written only when ARGV[2] == "1"
-- KEYS[2+k]    the k-th deadline key the candidates refer to (k = 1..ARGV[4])
-- ARGV[1]      marker: a value no entry can equal
-- ARGV[2]      "1": push an archive record per removed entry onto KEYS[2]
-- ARGV[3]      slack: how far around the read positions to look
-- ARGV[4]      m, the number of deadline keys
-- ARGV[4+6(i-1)+1..6]  candidate i, in list order: the entry, its index when
--              read, the k of its deadline key in KEYS ("0": judged without
--              one, by its exception or its age), the deadline value as
--              judged ("" = no key), due: the Unix time in milliseconds from
--              which Redis's clock lets it go, and its archive record
--
-- Returns an array of n codes: 1 removed; 0 gone (no longer in the list as
-- it was read: removed or retried by someone else); 2 kept, because its
-- deadline key changed since it was judged; 3 kept, because by Redis's
-- clock it is not due yet.
--
-- All or nothing: before its first write the script checks that the user
-- may run every command it will run on every key (redis.acl_check_cmd,
-- Redis >= 7) and that the journal is a list, and refuses otherwise,
-- writing nothing. Its writes then run under pcall; should one still fail,
-- the writes before it are undone in reverse order (internal/once's envelope
-- gives it write, push and undone) and the script answers
-- the error.
local marker = ARGV[1]
local journal = ARGV[2] == '1'
local slack = tonumber(ARGV[3])
local m = tonumber(ARGV[4])
local n = (#ARGV - 4) / 6
local codes = {}
if n < 1 then return codes end
local list = KEYS[1]
local dkeys = {}
for k = 1, m do dkeys[k] = KEYS[2 + k] end

local checks = {{'lrange', list, '0', '0'}, {'lset', list, '0', ''}, {'llen', list}, {'lrem', list, '0', ''}}
if m > 0 then
  checks[#checks + 1] = {'mget', unpack(dkeys)}
  checks[#checks + 1] = {'exists', dkeys[1]}
end
if journal then checks[#checks + 1] = {'rpush', KEYS[2], ''} end
local refused = denied(checks, 'removed')
if refused then return refused end
if journal then
  local t = redis.call('TYPE', KEYS[2])['ok']
  if t ~= 'none' and t ~= 'list' then
    return redis.error_reply('ERR resque-expire: ' .. KEYS[2] .. ' is a ' .. t .. ', not a list; nothing was removed')
  end
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local first = tonumber(ARGV[6])
local last = tonumber(ARGV[4 + 6 * (n - 1) + 2])
local from = first - slack
if from < 0 then from = 0 end
local win = redis.call('LRANGE', list, from, last + slack)

local values = {}
if m > 0 then values = redis.call('MGET', unpack(dkeys)) end

-- Choose the victims; nothing is written yet.
local pos = 0
local victims = {}
local records = {}
for i = 1, n do
  local a = 4 + 6 * (i - 1)
  local entry, k, judged, due = ARGV[a + 1], tonumber(ARGV[a + 3]), ARGV[a + 4], tonumber(ARGV[a + 5])
  local found = nil
  for j = pos + 1, #win do
    if win[j] == entry then
      found = j
      break
    end
  end
  if not found then
    codes[i] = 0
  else
    pos = found
    local same = true
    if k > 0 then
      local cur = values[k]
      if cur == false then
        cur = ''
        if judged == '' and redis.call('EXISTS', dkeys[k]) == 1 then
          cur = '\0not-a-string'
        end
      end
      same = cur == judged
    end
    if not same then
      codes[i] = 2
    elseif now_ms < due then
      codes[i] = 3
    else
      codes[i] = 1
      victims[#victims + 1] = {from + found - 1, entry}
      if journal then records[#records + 1] = ARGV[a + 6] end
    end
  end
end
if #victims == 0 then return codes end

-- The writes, each undone (in reverse) should a later one fail (write, push
-- and undone come from internal/once's envelope).
if journal then push(KEYS[2], records) end
local marked = 0
write(function()
  for m, v in ipairs(victims) do
    redis.call('LSET', list, v[1], marker)
    marked = m
  end
end, function()
  for m = 1, marked do redis.pcall('LSET', list, victims[m][1], victims[m][2]) end
end)
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
return codes
