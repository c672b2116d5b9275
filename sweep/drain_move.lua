-- drain_move.lua: after a copy engine's cutover (cutover.lua), move a batch
-- of staged entries from the head of a committed list to the tail of their
-- destination: archive records to the run's journal (drained to the archive
-- file as every journal is), failure entries to the failed list.
--
-- KEYS[1]  the committed list (its entries, in order)
-- KEYS[2]  the destination list
-- ARGV[1]  the most entries to move
-- ARGV[2]  the most bytes to move: the script stops after the entry that
--          passes them (an archive record holds a whole payload)
--
-- Returns the number of entries moved (0: the committed list is empty).
-- Refuses, changing nothing, when the destination holds another type.
local src, dst, n, maxbytes = KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2])
local refused = denied({{'lrange', src, '0', '0'}, {'ltrim', src, '0', '0'}, {'type', dst}, {'rpush', dst, ''}}, 'moved')
if refused then return refused end
local t = redis.call('TYPE', dst)['ok']
if t ~= 'none' and t ~= 'list' then
  return redis.error_reply('ERR resque-expire: ' .. dst .. ' is a ' .. t .. ', not a list; nothing was moved')
end
-- Read in small steps, up to n entries or maxbytes.
local items, bytes = {}, 0
while #items < n and bytes < maxbytes do
  local got = redis.call('LRANGE', src, #items, math.min(#items + 3, n - 1))
  if #got == 0 then break end
  for _, v in ipairs(got) do
    if #items < n and bytes < maxbytes then
      items[#items + 1] = v
      bytes = bytes + #v
    end
  end
end
if #items == 0 then return 0 end
for k = 1, #items, 1000 do
  redis.call('RPUSH', dst, unpack(items, k, math.min(k + 999, #items)))
end
redis.call('LTRIM', src, #items, -1)
return #items
