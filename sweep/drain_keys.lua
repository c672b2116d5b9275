-- drain_keys.lua: after a copy engine's cutover (cutover.lua), delete the
-- deadline keys of the removed jobs, a batch from the head of the committed
-- staging list at a time, each only if it still holds the value the job was
-- judged by (compare-and-delete): a key given a new deadline since, or a
-- job re-enqueued with the same id and a new deadline, keeps its key.
--
-- KEYS[1]    the committed staging list: an entry a victim, the client's
--            encoding of (deadline key, judged value, report), the key and
--            value "" for a victim judged without a key (--max-age)
-- KEYS[2..]  the deadline keys of the entries read, without the empty ones:
--            those whose judged value holds no "\n" in entry order, then
--            the others
-- ARGV[1]    n, the entries read from the list's head
-- ARGV[2]    SHA1 of the first entry read; ARGV[3] of the n-th
-- ARGV[4]    m: KEYS[2..1+m] are the keys whose judged values hold no "\n"
-- ARGV[5]    their judged values, in order, joined by "\n"
-- ARGV[5+j]  the judged value of KEYS[1+m+j], one holding a "\n" (rare:
--            a deadline such as "1700000000\n" is valid)
--
-- Returns the number of keys deleted, or -1 when the list's head is not what
-- was read any more (the batch was drained already); nothing is changed then.
local list, n = KEYS[1], tonumber(ARGV[1])
-- The LTRIM follows the DEL, so its permission is checked first. The
-- deadline keys' are not checked ahead (one check over a batch's keys costs
-- as much as the MGET): the MGET reads and the DEL is the first write, so
-- a refusal of either, answered by pcall, leaves everything as it was.
local refused = denied({{'lindex', list, '0'}, {'ltrim', list, '0', '0'}}, 'deleted')
if refused then return refused end
-- refusal is the answer to an error of the MGET or the DEL: nope's for a
-- permission, Redis's own otherwise (a failover's READONLY, say).
local function refusal(err, cmd, key)
  if acl_error(err) then return nope(cmd, key, 'deleted') end
  return redis.error_reply(err)
end
local first = redis.call('LINDEX', list, 0)
local last = redis.call('LINDEX', list, n - 1)
if not first or not last or redis.sha1hex(first) ~= ARGV[2] or redis.sha1hex(last) ~= ARGV[3] then
  return -1
end
-- One MGET and one DEL for the batch, not a call a key: the calls from Lua
-- cost more than the keys. (MGET answers false for a key that is missing or
-- holds another type, which never equals a judged value; a key twice in the
-- batch is deleted, and counted, once.)
local deleted = 0
if #KEYS > 1 then
  local vals = redis.pcall('MGET', unpack(KEYS, 2))
  if vals.err then return refusal(vals.err, 'mget', KEYS[2]) end
  -- When no key changed (the common case) one string compare says so: the
  -- values now hold no more "\n"s than the judged ones joined, so none holds
  -- one and each equals its own. A false (a key gone) fails the concat.
  -- Else, and for the values holding a "\n", key by key.
  local m = tonumber(ARGV[4])
  local same, got = pcall(table.concat, vals, '\n', 1, m)
  same = same and got == ARGV[5]
  local del = KEYS
  if not same or m < #KEYS - 1 then
    del = {false}
    if same then
      for i = 2, m + 1 do del[#del + 1] = KEYS[i] end
    else
      local i = 2
      for judged in string.gmatch(ARGV[5] .. '\n', '([^\n]*)\n') do
        if i > m + 1 then break end
        if vals[i - 1] == judged then del[#del + 1] = KEYS[i] end
        i = i + 1
      end
    end
    for i = m + 2, #KEYS do
      if vals[i - 1] == ARGV[4 + i - m] then del[#del + 1] = KEYS[i] end
    end
  end
  if #del > 1 then
    deleted = redis.pcall('DEL', unpack(del, 2))
    if type(deleted) == 'table' then return refusal(deleted.err, 'del', del[2]) end
  end
end
redis.call('LTRIM', list, n, -1)
return deleted
