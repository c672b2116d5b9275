-- fix_delete.lua: delete one key the audit judged rotten (a stuck
-- idempotency key, an orphaned loner marker, an expired orphaned deadline
-- key), only if it is still in the state that was judged.
--
-- KEYS[1]  the key
-- ARGV[1]  its string value when it was judged
-- ARGV[2]  what its TTL must still be:
--            "none"  no TTL at all (a write since would not have given it one
--                    either, but a SET ... EX would);
--            "any"   not checked;
--            <ms>    a TTL of at most this many milliseconds: the remaining
--                    TTL when it was judged, which only shrinks unless the key
--                    was written again
-- Returns 1 when the key was deleted, 0 when it changed since it was judged
-- (another type, another value, or its TTL was set or renewed) and is kept,
-- -1 when it is gone.
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  return -1
end
if t ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if ARGV[2] == 'none' then
  if pttl ~= -1 then
    return 0
  end
elseif ARGV[2] ~= 'any' then
  if pttl < 0 or pttl > tonumber(ARGV[2]) then
    return 0
  end
end
return redis.call('DEL', KEYS[1])
