-- lock_renew.lua: extend the sweep lock, only while we still own it.
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's value (a JSON document with a random token)
-- ARGV[2]  new time to live in milliseconds
-- Returns 1 when renewed, 0 when the lock is gone or held by someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
