-- once: the envelope resque-expire puts around every script that writes, so
-- that a call whose reply was lost, and that the client then retries, answers
-- what the first call answered instead of running a second time.
--
-- KEYS[#KEYS]    the requests hash of the run the call belongs to; removed
--                from KEYS before the script's own body runs
-- ARGV[#ARGV-1]  the call's field in that hash, unique within the run
-- ARGV[#ARGV]    how long the hash is kept after the call, in milliseconds
--                (both removed from ARGV likewise)
--
-- The first call runs the body and records its answer in the hash; a retry
-- finds the field and returns the recorded answer untouched.
-- Error replies are not recorded: a body that refuses wrote nothing, so
-- running it again is safe.
local once_key = table.remove(KEYS)
local once_ttl = table.remove(ARGV)
local once_field = table.remove(ARGV)
local once_done = redis.call('HGET', once_key, once_field)
if once_done then
  return cjson.decode(once_done).v
end
if redis.acl_check_cmd then
  for _, cmd in ipairs({'hset', 'pexpire'}) do
    if not redis.acl_check_cmd(cmd, once_key, '0', '0') then
      return redis.error_reply('NOPERM resque-expire: this user may not run ' .. string.upper(cmd) ..
        ' on ' .. once_key .. '; nothing was changed')
    end
  end
end
local function once_body()
