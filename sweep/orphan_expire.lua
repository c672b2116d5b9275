-- orphan_expire.lua: deal with one orphaned expiration key, only if it still
-- holds the value that was judged.
-- KEYS[1]  the expiration key
-- ARGV[1]  its value when it was judged
-- ARGV[2]  "del" to delete it (its deadline has passed), or a Unix time in
--          milliseconds to PEXPIREAT it at (its deadline is ahead)
-- Returns 1 when the key was deleted or given its expiry, 0 when it changed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'del' then
  return redis.call('DEL', KEYS[1])
end
return redis.call('PEXPIREAT', KEYS[1], ARGV[2])
