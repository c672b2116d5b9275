-- restore_job.lua: put one archived job back on its queue, at most once, and
-- mark its record restored in the same atomic step.
--
-- Redis does not roll a script back, so everything that could make a write
-- fail is checked before the first one: the type of every key written, and
-- (Redis >= 7, redis.acl_check_cmd) the user's permission for every write. A
-- failed check answers an error reply and changes nothing. The writes follow
-- in an order that cannot leave a marker without its job: the job first, the
-- marker last.
--
-- KEYS[1]  the queue list
-- KEYS[2]  the queues set (<ns>:queues)
-- KEYS[3]  the restored marker for this archive record
-- KEYS[4]  optional: the job's expiration key, set when ARGV[4] ~= ""
-- ARGV[1]  the payload
-- ARGV[2]  the queue name
-- ARGV[3]  how long to remember the record was restored, in milliseconds
-- ARGV[4]  a new deadline (Unix seconds) for KEYS[4], or ""
-- ARGV[5]  when KEYS[4] itself expires (Unix seconds: deadline + retention)
-- ARGV[6]  this call's token (the run's random token and the record's line),
--          stored as the marker's value
-- Returns 1 when the job was pushed, and also when the marker already holds
-- ARGV[6] (a retry of this very call, whose first reply was lost: the job
-- was pushed by it); 0 when this record was restored before; an error reply
-- (WRONGTYPE or NOPERM, "nothing was changed") when a check fails.
local function refuse(code, msg)
  return redis.error_reply(code .. ' resque-expire: ' .. msg .. '; nothing was changed')
end

local mt = redis.call('TYPE', KEYS[3])['ok']
if mt == 'string' then
  if redis.call('GET', KEYS[3]) == ARGV[6] then
    return 1
  end
  return 0
elseif mt ~= 'none' then
  return refuse('WRONGTYPE', KEYS[3] .. ' is a ' .. mt .. ', not a string')
end

local want = {{KEYS[1], 'list'}, {KEYS[2], 'set'}}
for _, w in ipairs(want) do
  local t = redis.call('TYPE', w[1])['ok']
  if t ~= 'none' and t ~= w[2] then
    return refuse('WRONGTYPE', w[1] .. ' is a ' .. t .. ', not a ' .. w[2])
  end
end

local withDeadline = ARGV[4] ~= '' and KEYS[4] ~= nil
local writes = {
  {'RPUSH', KEYS[1], ARGV[1]},
  {'SADD', KEYS[2], ARGV[2]},
}
if withDeadline then
  -- SET NX does not care about the type of a key that exists.
  writes[#writes + 1] = {'SET', KEYS[4], ARGV[4], 'NX', 'EXAT', ARGV[5]}
end
writes[#writes + 1] = {'SET', KEYS[3], ARGV[6], 'PX', ARGV[3]}

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
