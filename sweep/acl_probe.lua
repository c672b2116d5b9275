-- acl_probe.lua: which of the commands a run needs may this user not run?
-- Writes nothing. Needs Redis 7 (redis.acl_check_cmd); on older servers it
-- answers nil and the run goes on unchecked.
--
-- KEYS[i]    the key command i is asked for (i = 1..n; "" arguments stand
--            in for values)
-- ARGV[i]    command i, lower case, with its subcommand after a "|" (for
--            example "script|load")
--
-- Returns an array of the indexes i the user may not run, or nil when
-- Redis cannot tell.
if not redis.acl_check_cmd then return nil end
local denied = {}
for i = 1, #ARGV do
  local cmd, sub = string.match(ARGV[i], '^([^|]+)|?(.*)$')
  local ok
  if KEYS[i] == '' and sub ~= '' then
    ok = redis.acl_check_cmd(cmd, sub, '')
  elseif KEYS[i] == '' then
    ok = redis.acl_check_cmd(cmd)
  else
    ok = redis.acl_check_cmd(cmd, KEYS[i], '0', '0')
  end
  if not ok then denied[#denied + 1] = i end
end
return denied
