-- Removes a job record and every index, queue, lease and retry entry of it.
-- KEYS as in put.lua.   ARGV[1] job id.   Returns 1 when the record existed.
local id = ARGV[1]
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('LREM', KEYS[4], 0, id)
for i = 5, 11 do
  redis.call('ZREM', KEYS[i], id)
end
redis.call('DEL', KEYS[12])
redis.call('ZREM', KEYS[13], id)
return existed
