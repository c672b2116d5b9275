-- cutover.lua: the atomic swap of the copy engine (copyswap.go).
--
-- The client copied the live list X, page by page from its head, into a
-- private list T (the survivors, in order) and staged what the removal of the
-- victims must do in S (deadline key, judged value, the removal's report:
-- one entry a victim), J (archive records) and F (failure entries).
-- Meanwhile workers popped X's head and producers pushed at its tail; nothing else may have changed in
-- the copied region. This script, in one step, finds how many of the copied
-- elements workers popped (p), checks that the rest of the copied region is
-- still exactly in X (head, end anchor, T's head, and the fence: no LSET,
-- LINSERT or LREM anywhere on the server since the copy began, besides the
-- tool's own, which the client adds to the expected counts), appends X's
-- uncopied tail to T, and swaps: X is renamed away and unlinked, T renamed
-- to X, and the staging lists renamed to the run's committed keys, which the
-- client drains afterwards (drain_keys.lua, drain_move.lua). Every key but
-- the lock, the stats hash and the run's requests hash shares X's hash slot.
--
-- KEYS[1]   X, the live list
-- KEYS[2]   T, the copy of its survivors
-- KEYS[3]   S, staged (deadline key, judged value, report) entries, one a
--           victim (the client's encoding)
-- KEYS[4]   J, staged archive records (one a victim, or none)
-- KEYS[5]   F, staged failure entries (one a victim, or none)
-- KEYS[6]   G, where X is renamed before it is unlinked
-- KEYS[7]   committed S; KEYS[8] committed J; KEYS[9] committed F
-- KEYS[10]  the sweep lock, which must still hold ARGV[1]
-- KEYS[11]  the stats hash: HINCRBY of field ARGV[11] by the jobs removed
-- ARGV[1]   the lock's value
-- ARGV[2]   C, the number of elements copied (the client's record)
-- ARGV[3]   the survivors pushed to T (its expected length)
-- ARGV[4]   the victims staged (S's expected length)
-- ARGV[5]   the expected length of J; ARGV[6] of F (0 or ARGV[4])
-- ARGV[7..9] the expected server-wide INFO commandstats calls of lset,
--           linsert and lrem (the fence)
-- ARGV[10]  the most elements of X's uncopied tail the script appends
-- ARGV[11]  the stats field, or "" to count nothing
-- ARGV[12]  p0: the record position of X's head when the client looked
-- ARGV[13]  the latest time a staged victim is due (Unix ms, deadline +
--           grace): by Redis's clock (TIME) it must have come
-- ARGV[14]  the most bytes of X's uncopied tail the script appends; beyond
--           them it answers retry-tail like ARGV[10]
-- ARGV[15]  a, the number of end-anchor hashes (at most 3)
-- ARGV[16..15+a]  the first 16 hex digits of the SHA1 of the last a copied
--           elements, in order
-- then, for w = 0.. (4 each): for record position p0 + w, the SHA1 prefix of
--           the element there, the survivors before it, the victims before
--           it, and the distance from it to the first survivor at or after
--           it (-1: none)
--
-- Returns {'ok', p, removed, tail}: swapped, p copied elements had been
-- popped (their victims count as gone), removed victims left with X, tail
-- elements were appended; {'retry-head'}: X's head is not in the window,
-- or not at one place only
-- (look again); {'retry-tail', n}: the uncopied tail is n > ARGV[10] long,
-- or over ARGV[14] bytes
-- (copy more first); {'abort', reason}: the copied region changed (reasons:
-- lock-lost, not-due, list-gone, copy-mismatch, t-head, end-anchor, fence-lset,
-- fence-linsert, fence-lrem). Nothing is written unless it answers ok.
local X, T, S, J, F, G = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CS, CJ, CF, LOCK, STATS = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local C, nsurv, nvict = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local njournal, nfail = tonumber(ARGV[5]), tonumber(ARGV[6])
local maxtail, stats_field, p0 = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local maxtailbytes, na = tonumber(ARGV[14]), tonumber(ARGV[15])
local wbase = 15 + na
local wn = (#ARGV - wbase) / 4

do
  local checks = {{'get', LOCK}, {'info', 'commandstats'}, {'type', X}, {'llen', X}, {'lrange', X, '0', '0'},
    {'lindex', X, '0'}, {'lindex', T, '0'}, {'llen', T}, {'llen', S}, {'llen', J}, {'llen', F},
    {'rpush', T, ''}, {'ltrim', T, '0', '0'}, {'ltrim', S, '0', '0'}, {'ltrim', J, '0', '0'},
    {'ltrim', F, '0', '0'}, {'exists', T}, {'rename', X, G}, {'rename', T, X}, {'unlink', G},
    {'rename', S, CS}, {'rename', J, CJ}, {'rename', F, CF}}
  if stats_field ~= '' then checks[#checks + 1] = {'hincrby', STATS, stats_field, '1'} end
  local refused = denied(checks, 'swapped')
  if refused then return refused end
end
if stats_field ~= '' then
  local t = redis.call('TYPE', STATS)['ok']
  if t ~= 'none' and t ~= 'hash' then
    return redis.error_reply('ERR resque-expire: ' .. STATS .. ' is a ' .. t .. ', not a hash; nothing was swapped')
  end
end

local function h16(s) return string.sub(redis.sha1hex(s), 1, 16) end

if redis.call('GET', LOCK) ~= ARGV[1] then return {'abort', 'lock-lost'} end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < tonumber(ARGV[13]) then
  return {'abort', 'not-due'}
end
if redis.call('TYPE', X)['ok'] ~= 'list' then return {'abort', 'list-gone'} end
if redis.call('LLEN', T) ~= nsurv or redis.call('LLEN', S) ~= nvict or
  redis.call('LLEN', J) ~= njournal or redis.call('LLEN', F) ~= nfail then
  return {'abort', 'copy-mismatch'}
end

-- Where X's head is in the record: the window position from which X's
-- first elements are the window's, as far as the window goes, and the only
-- one (id-less identical payloads can repeat a short run; aligning at the
-- wrong one would bring back popped jobs). At most wn elements are hashed,
-- and the search stops at a second match.
local head = redis.call('LRANGE', X, 0, wn - 1)
local hh = {}
for i, v in ipairs(head) do hh[i] = h16(v) end
local off, found = nil, 0
for o = 0, wn - 1 do
  local ok = true
  for i = 1, math.min(#hh, wn - o) do
    if ARGV[wbase + 4 * (o + i - 1) + 1] ~= hh[i] then
      ok = false
      break
    end
  end
  if ok then
    found = found + 1
    if found > 1 then break end
    off = o
  end
end
if found ~= 1 or #hh == 0 then return {'retry-head'} end
local p = p0 + off
local a = wbase + 4 * off
local sb, vb, nxt = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
local e = C - p -- X's index just past the copied region

-- The end anchor: the last copied elements are where the copied region,
-- less the pops, ends. A change of the region's length (LREM, LINSERT, an
-- RPOP or LTRIM into it) moves them.
if na > 0 then
  local from = math.max(0, e - na)
  local got = redis.call('LRANGE', X, from, e - 1)
  if #got ~= e - from then return {'abort', 'end-anchor'} end
  for k = 1, #got do
    if h16(got[k]) ~= ARGV[15 + na - (e - from) + k] then return {'abort', 'end-anchor'} end
  end
end

-- T's head, once the popped survivors are trimmed, is X's first survivor.
if nxt >= 0 then
  local th = redis.call('LINDEX', T, sb)
  if not th or th ~= redis.call('LINDEX', X, nxt) then return {'abort', 't-head'} end
end

-- The fence: an LSET (length neutral) anywhere would escape the checks
-- above; any LSET, LINSERT or LREM on the server since the copy began aborts.
local info = redis.call('INFO', 'commandstats')
for k, cmd in ipairs({'lset', 'linsert', 'lrem'}) do
  local n = tonumber(string.match(info, 'cmdstat_' .. cmd .. ':calls=(%d+)') or '0')
  if n ~= tonumber(ARGV[6 + k]) then return {'abort', 'fence-' .. cmd} end
end

local len = redis.call('LLEN', X)
local tail = len - e
if tail > maxtail then return {'retry-tail', tail} end
-- Read in small steps, so that a tail of large payloads stops the read
-- at about ARGV[14] bytes instead of moving it all through Lua.
local items, bytes = {}, 0
while #items < tail do
  local got = redis.call('LRANGE', X, e + #items, e + math.min(#items + 7, tail - 1))
  for _, v in ipairs(got) do
    bytes = bytes + #v
    items[#items + 1] = v
  end
  if bytes > maxtailbytes then return {'retry-tail', tail} end
  if #got == 0 then break end
end

-- The writes that may fail (they allocate), undone should one do so
-- (write, push, undone come from internal/once's envelope).
push(T, items)
local removed = nvict - vb
if stats_field ~= '' and removed > 0 then
  local counted = false
  write(function()
    redis.call('HINCRBY', STATS, stats_field, removed)
    counted = true
  end, function()
    if counted then redis.pcall('HINCRBY', STATS, stats_field, -removed) end
  end)
end
local refused = undone('swapped')
if refused then return refused end

-- The swap: none of these allocates. X goes to G first, so that should
-- T's rename fail, X is put back.
if sb > 0 then redis.call('LTRIM', T, sb, -1) end
if vb > 0 then
  redis.call('LTRIM', S, vb, -1)
  redis.call('LTRIM', J, vb, -1)
  redis.call('LTRIM', F, vb, -1)
end
redis.call('RENAME', X, G)
if redis.call('EXISTS', T) == 1 then
  local r = redis.pcall('RENAME', T, X)
  if type(r) == 'table' and r.err then
    redis.call('RENAME', G, X)
    return redis.error_reply(r.err .. ' (resque-expire: the list was put back; nothing was swapped)')
  end
end
redis.call('UNLINK', G)
for _, kv in ipairs({{S, CS}, {J, CJ}, {F, CF}}) do
  if redis.call('EXISTS', kv[1]) == 1 then redis.call('RENAME', kv[1], kv[2]) end
end
return {'ok', p, removed, tail}
