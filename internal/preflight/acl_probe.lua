-- acl_probe.lua: which of the commands a run needs may this user not run?
-- Writes nothing. Needs Redis 7 (redis.acl_check_cmd); on older servers it
-- answers nil and the run goes on unchecked.
--
-- KEYS       the keys the commands are asked about, one of each family
-- ARGV[2i-1] command i, lower case, with its subcommand after a "|" (for
--            example "script|load")
-- ARGV[2i]   the index in KEYS of the key command i is asked for, or 0 for
--            a command without a key
--
-- Returns an array of the indexes i the user may not run, or nil when
-- Redis cannot tell.
if not redis.acl_check_cmd then return nil end
local denied = {}
for i = 1, #ARGV / 2 do
  local cmd, sub = string.match(ARGV[2 * i - 1], '^([^|]+)|?(.*)$')
  local key = KEYS[tonumber(ARGV[2 * i])]
  local ok
  if key then
    -- The key stands in for the other arguments too: for commands that
    -- take several keys (MGET, EXISTS, DEL) they are keys.
    ok = redis.acl_check_cmd(cmd, key, key, key)
  elseif sub ~= '' then
    ok = redis.acl_check_cmd(cmd, sub, '')
  else
    ok = redis.acl_check_cmd(cmd)
  end
  if not ok then denied[#denied + 1] = i end
end
return denied
