-- Drops index entries of records whose TTL has run out (Redis expired the record itself).
-- KEYS[1] jobs:created   KEYS[2] jobs:expiry
-- ARGV[1] now ms   ARGV[2] most entries to drop in one call
-- Returns the number of entries dropped.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #expired
