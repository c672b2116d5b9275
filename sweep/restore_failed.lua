-- restore_failed.lua: put one archived failure entry back on its failed
-- list, at most once, and mark its record restored in the same atomic step.
--
-- As restore_job.lua: everything that could make a write fail is checked
-- before the first one (the type of every key written and, on Redis >= 7,
-- the user's permission for every write), and the writes go in an order
-- that cannot leave a marker without its entry: the entry first, the
-- marker last.
--
-- KEYS[1]  the failed list (<ns>:failed or <ns>:<queue>_failed)
-- KEYS[2]  the multi-queue backend's set of failed lists (<ns>:failed_queues)
-- KEYS[3]  the restored marker for this archive record
-- ARGV[1]  the failure entry, exactly as it was removed
-- ARGV[2]  the failed list's name to add to KEYS[2] ("" for <ns>:failed,
--          which Resque does not list there)
-- ARGV[3]  how long to remember the record was restored, in milliseconds
-- ARGV[4]  this call's token, stored as the marker's value
-- Returns 1 when the entry was pushed (also for a retry of this very call,
-- whose marker holds ARGV[4]); 0 when this record was restored before; an
-- error reply (WRONGTYPE or NOPERM, "nothing was changed") when a check fails.
local function refuse(code, msg)
  return redis.error_reply(code .. ' resque-expire: ' .. msg .. '; nothing was changed')
end

local mt = redis.call('TYPE', KEYS[3])['ok']
if mt == 'string' then
  if redis.call('GET', KEYS[3]) == ARGV[4] then
    return 1
  end
  return 0
elseif mt ~= 'none' then
  return refuse('WRONGTYPE', KEYS[3] .. ' is a ' .. mt .. ', not a string')
end

local want = {{KEYS[1], 'list'}}
if ARGV[2] ~= '' then want[#want + 1] = {KEYS[2], 'set'} end
for _, w in ipairs(want) do
  local t = redis.call('TYPE', w[1])['ok']
  if t ~= 'none' and t ~= w[2] then
    return refuse('WRONGTYPE', w[1] .. ' is a ' .. t .. ', not a ' .. w[2])
  end
end

local writes = {{'RPUSH', KEYS[1], ARGV[1]}}
if ARGV[2] ~= '' then writes[#writes + 1] = {'SADD', KEYS[2], ARGV[2]} end
writes[#writes + 1] = {'SET', KEYS[3], ARGV[4], 'PX', ARGV[3]}

if redis.acl_check_cmd then
  for _, w in ipairs(writes) do
    if not redis.acl_check_cmd(unpack(w)) then
      return refuse('NOPERM', 'this user may not run ' .. w[1] .. ' on ' .. w[2])
    end
  end
end

for _, w in ipairs(writes) do
  redis.call(unpack(w))
end
return 1
