-- journal_trim.lua: drop the records a drain has just written to the
-- archive from the head of the journal, only if they are still there.
-- A plain LTRIM that the client retries after a lost reply would drop as
-- many records again: records of another list, not yet archived.
--
-- KEYS[1]  the journal list
-- ARGV[1]  n, how many records were read from the head
-- ARGV[2]  SHA1 of the first record read
-- ARGV[3]  SHA1 of the last (n-th) record read
-- Returns 1 when the n records were dropped, 0 when they were not at the
-- head any more (already dropped), and nothing was changed.
local n = tonumber(ARGV[1])
local first = redis.call('LINDEX', KEYS[1], 0)
local last = redis.call('LINDEX', KEYS[1], n - 1)
if first and last and redis.sha1hex(first) == ARGV[2] and redis.sha1hex(last) == ARGV[3] then
  redis.call('LTRIM', KEYS[1], n, -1)
  return 1
end
return 0
