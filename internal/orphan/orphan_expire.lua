-- orphan_expire.lua: give one orphaned deadline key (its id was in no list
-- the run read) a TTL, only if it still holds the value that was judged. The
-- key is never deleted: its job may only have been between two lists while
-- the run read them (resque-scheduler moving it from a delayed bucket to the
-- tail of a queue already read, a worker re-enqueueing it), and a sweep
-- within the TTL then finds the job with its deadline and removes both. If
-- there is no job, the key vanishes by itself.
--
-- KEYS[1]  the deadline key
-- ARGV[1]  its value when it was judged
-- ARGV[2]  the TTL it is to have at most, in milliseconds (> 0)
-- Returns 1 when the key now expires within ARGV[2] ms: it was given that
-- TTL, or it already had a shorter one and is left as it is (so a retried
-- call, which finds the TTL it set, answers 1 too); 0 when it changed since
-- it was judged (another type or value) and is left alone; -1 when it is gone.
-- One write, the last command: a refused PEXPIRE (ACL, read-only) changes
-- nothing.
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  return -1
end
if t ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl >= 0 and pttl <= tonumber(ARGV[2]) then
  return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
