end
local once_r = once_body()
if type(once_r) == 'table' and once_r.err then
  return once_r
end
-- pcall: the body's writes are done; a refused record (out of memory before
-- any write) costs only the retry guarantee, never the answer.
redis.pcall('HSET', once_key, once_field, cjson.encode({v = once_r}))
redis.pcall('PEXPIRE', once_key, once_ttl)
return once_r
