-- restore_job.lua: put one archived job back on its queue, at most once.
-- KEYS[1]  the queue list
-- KEYS[2]  the queues set (<ns>:queues)
-- KEYS[3]  the restored marker for this archive record
-- KEYS[4]  optional: the job's expiration key, set when ARGV[4] ~= ""
-- ARGV[1]  the payload
-- ARGV[2]  the queue name
-- ARGV[3]  how long to remember the record was restored, in milliseconds
-- ARGV[4]  a new deadline (Unix seconds) for KEYS[4], or ""
-- ARGV[5]  when KEYS[4] itself expires (Unix seconds: deadline + retention)
-- Returns 1 when the job was pushed, 0 when this record was restored before.
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[3]) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if ARGV[4] ~= '' and KEYS[4] then
  redis.call('SET', KEYS[4], ARGV[4], 'NX', 'EXAT', ARGV[5])
end
return 1
