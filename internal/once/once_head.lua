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
-- finds the field and returns the recorded answer untouched. The envelope
-- also gives the body write, undone, push and put_back (below), so that a
-- body writing more than once either completes or changes nothing, and
-- nope, denied, denied_keys and acl_error for its permission checks.
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

-- Permissions, for the body: Redis checks a script's commands one by one, so
-- a body checks every command it may run first (Redis 7 and later) and
-- answers nope's reply, having written nothing. denied checks each
-- {command, key, args...} of checks and answers the reply naming the first
-- refused, or nil; denied_keys checks cmd on KEYS[from..to] in one call,
-- naming the first refused key should it be refused.
local function nope(cmd, key, what)
  return redis.error_reply('NOPERM resque-expire: this user may not run ' .. string.upper(cmd) ..
    ' on ' .. key .. '; nothing was ' .. what)
end
-- acl_error says whether err, an error a command called through pcall
-- answered, is a refusal of the user's permissions (Redis 7 words it
-- "The user executing the script can't ...", later versions NOPERM).
local function acl_error(err)
  return string.sub(err, 1, 6) == 'NOPERM' or string.find(err, 'The user executing the script', 1, true) ~= nil
end
local function denied(checks, what)
  if not redis.acl_check_cmd then return nil end
  for _, c in ipairs(checks) do
    if not redis.acl_check_cmd(unpack(c)) then return nope(c[1], c[2], what) end
  end
  return nil
end
local function denied_keys(cmd, from, to, what)
  if not redis.acl_check_cmd or to < from or redis.acl_check_cmd(cmd, unpack(KEYS, from, to)) then
    return nil
  end
  for i = from, to do
    if not redis.acl_check_cmd(cmd, KEYS[i]) then return nope(cmd, KEYS[i], what) end
  end
  return nope(cmd, KEYS[from], what)
end

-- All or nothing, for the body. Redis does not roll a script back, so a body
-- that writes more than once runs its writes through write(fn, back): fn
-- under pcall, and back its undo, which must undo what fn did even if fn
-- failed part-way (fn notes its progress where back can read it); nil for
-- the last write, which nothing follows. Once a write failed the later ones
-- are skipped, and undone(what) runs the undos in reverse and gives the
-- error reply to answer (nil when every write went through).
local once_undo, once_failed = {}, nil
local function write(fn, back)
  if once_failed then return end
  if back then once_undo[#once_undo + 1] = back end
  local ok, err = pcall(fn)
  if not ok then once_failed = err end
end
local function undone(what)
  if not once_failed then return nil end
  for k = #once_undo, 1, -1 do once_undo[k]() end
  local msg = type(once_failed) == 'table' and once_failed.err or tostring(once_failed)
  return redis.error_reply(msg .. ' (resque-expire: every write of this batch was undone; nothing was ' .. what .. ')')
end
-- push appends items to the list key, in slices small enough for unpack's
-- stack; its undo trims off what was pushed.
local function push(key, items)
  if #items == 0 then return end
  local pushed = 0
  write(function()
    for k = 1, #items, 1000 do
      local last = math.min(k + 999, #items)
      redis.call('RPUSH', key, unpack(items, k, last))
      pushed = last
    end
  end, function()
    if pushed > 0 then redis.pcall('LTRIM', key, 0, -pushed - 1) end
  end)
end
-- put_back sets a deleted string key again, with the PTTL it had (<= 0:
-- none), for an undo.
local function put_back(key, value, pttl)
  if pttl > 0 then
    redis.pcall('SET', key, value, 'PX', pttl)
  else
    redis.pcall('SET', key, value)
  end
end

local function once_body()
