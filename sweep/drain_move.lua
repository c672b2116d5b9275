-- drain_move.lua: after a copy engine's cutover (cutover.lua), move a batch
-- of staged entries from the head of a committed list to the tail of their
-- destination: archive records to the run's journal (drained to the archive
-- file as every journal is), failure entries to the failed list.
--
-- KEYS[1]  the committed list (its entries, in order)
-- KEYS[2]  the destination list
-- ARGV[1]  the most entries to move
--
-- Returns the number of entries moved (0: the committed list is empty).
-- Refuses, changing nothing, when the destination holds another type.
local src, dst, n = KEYS[1], KEYS[2], tonumber(ARGV[1])
if redis.acl_check_cmd then
  for _, c in ipairs({{'lrange', src, '0', '0'}, {'ltrim', src, '0', '0'}, {'type', dst}, {'rpush', dst, ''}}) do
    if not redis.acl_check_cmd(unpack(c)) then
      return redis.error_reply('NOPERM resque-expire: this user may not run ' .. string.upper(c[1]) ..
        ' on ' .. c[2] .. '; nothing was moved')
    end
  end
end
local t = redis.call('TYPE', dst)['ok']
if t ~= 'none' and t ~= 'list' then
  return redis.error_reply('ERR resque-expire: ' .. dst .. ' is a ' .. t .. ', not a list; nothing was moved')
end
local items = redis.call('LRANGE', src, 0, n - 1)
if #items == 0 then return 0 end
for k = 1, #items, 1000 do
  redis.call('RPUSH', dst, unpack(items, k, math.min(k + 999, #items)))
end
redis.call('LTRIM', src, #items, -1)
return #items
