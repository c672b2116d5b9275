-- backfill_page.lua: give one page of jobs their deadlines, never replacing
-- a deadline someone else set, and give existing deadline keys a Redis TTL.
--
-- KEYS[i]          entry i's expiration key (i = 1..n)
-- ARGV[3(i-1)+1]   entry i's operation: "set" or "fix"
-- ARGV[3(i-1)+2]   "set": the deadline to write (Unix seconds);
--                  "fix": the value the key held when the page was read
-- ARGV[3(i-1)+3]   when the key itself expires (Unix seconds, for EXAT)
--
-- "set" is SET key deadline NX EXAT at: it writes only a key that does not
-- exist, so a deadline written meanwhile by an enqueuer or another run wins.
-- "fix" is EXPIREAT key at NX, only if the key still holds the value read:
-- a key that already has a TTL keeps it, and a key rewritten since the read
-- is not given a TTL computed from its old deadline.
--
-- Returns an array of n codes. "set": 1 written, 0 the key already existed.
-- "fix": 1 TTL given, 0 the key already had a TTL, 2 the key changed or is
-- gone since the read.
--
-- Writes nothing when the user may not run one of its commands on one of the
-- keys (checked first, on Redis 7 and later).
--
-- Needs Redis 6.2 (SET ... EXAT) and, for "fix", Redis 7.0 (EXPIREAT ... NX).
if redis.acl_check_cmd then
  for i = 1, #KEYS do
    local cmds = {'set'}
    if ARGV[3 * (i - 1) + 1] ~= 'set' then cmds = {'get', 'expireat'} end
    for _, cmd in ipairs(cmds) do
      if not redis.acl_check_cmd(cmd, KEYS[i], '0', '0') then return nope(cmd, KEYS[i], 'changed') end
    end
  end
end
local codes = {}
for i = 1, #KEYS do
  local a = 3 * (i - 1)
  local op, value, at = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if op == 'set' then
    if redis.call('SET', KEYS[i], value, 'NX', 'EXAT', at) then
      codes[i] = 1
    else
      codes[i] = 0
    end
  else
    local cur = redis.pcall('GET', KEYS[i])
    if cur ~= value then
      codes[i] = 2
    else
      codes[i] = redis.call('EXPIREAT', KEYS[i], at, 'NX')
    end
  end
end
return codes
