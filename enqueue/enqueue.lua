-- enqueue.lua: push one Resque job together with its deadline, atomically:
-- either the job, its queue registration and its deadline key all exist
-- afterwards, or nothing was written.
--
-- On a queue (ARGV[5] == ""), as Resque.push does:
--   KEYS[1]  the queue list, <ns>:queue:<queue>          (RPUSH)
--   KEYS[2]  the queues set, <ns>:queues                 (SADD ARGV[2])
--   KEYS[3]  the job's deadline key, <ns>:job:<id>:expiration
-- On resque-scheduler's delayed schedule (ARGV[5] = Unix second ts), as
-- resque-scheduler's delayed_push does:
--   KEYS[1]  the bucket list, <ns>:delayed:<ts>           (RPUSH)
--   KEYS[2]  the payload's set, <ns>:timestamps:<payload> (SADD ARGV[2])
--   KEYS[3]  the job's deadline key
--   KEYS[4]  the schedule, <ns>:delayed_queue_schedule    (ZADD ts ts)
-- ARGV[1]  the payload (JSON)
-- ARGV[2]  the queue name, or "delayed:<ts>" (not namespaced) when delayed
-- ARGV[3]  the deadline, integer Unix seconds
-- ARGV[4]  when the deadline key itself expires, Unix seconds (EXAT):
--          the deadline plus a retention, e.g. 7 days
-- ARGV[5]  "" for a queue, or the bucket's Unix second ts
--
-- Returns 1 when the job was pushed; 0 when the deadline key already exists
-- (another job has this id), and then nothing was written. Fails, writing
-- nothing, when one of the keys holds another Redis type, or when the user
-- may not run one of the writes (checked first, on Redis 7 and later).
-- Needs Redis 6.2 or later (SET ... EXAT).
local delayed = ARGV[5] ~= ''
local writes = {{'set', KEYS[3]}, {'rpush', KEYS[1]}, {'sadd', KEYS[2]}}
if delayed then writes[4] = {'zadd', KEYS[4]} end
if redis.acl_check_cmd then
  for _, w in ipairs(writes) do
    if not redis.acl_check_cmd(w[1], w[2], '0', '0') then
      return redis.error_reply('NOPERM this user may not run ' .. string.upper(w[1]) .. ' on ' .. w[2] .. '; nothing was enqueued')
    end
  end
end
local want = {{KEYS[1], 'list'}, {KEYS[2], 'set'}, {KEYS[3], 'string'}}
if delayed then want[4] = {KEYS[4], 'zset'} end
for _, w in ipairs(want) do
  local t = redis.call('TYPE', w[1])['ok']
  if t ~= 'none' and t ~= w[2] then
    return redis.error_reply('WRONGTYPE ' .. w[1] .. ' holds a ' .. t .. ', not a ' .. w[2])
  end
end
if not redis.call('SET', KEYS[3], ARGV[3], 'NX', 'EXAT', ARGV[4]) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if delayed then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[5])
end
return 1
