-- fix_ttl.lua: give a key of an audited family that has no TTL one; the
-- equivalent of PEXPIRE key ttl NX, which Redis before 7.0 lacks.
--
-- KEYS[1]  the key
-- ARGV[1]  the TTL to give it, in milliseconds
-- Returns 1 when the TTL was set, 0 when the key has a TTL by now (it is
-- left as it is), -1 when it is gone.
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -2 then
  return -1
end
if pttl ~= -1 then
  return 0
end
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
