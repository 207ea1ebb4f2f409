-- Drops index entries of records whose TTL has run out (Redis expired the record itself).
-- KEYS[1] jobs:created   KEYS[2] jobs:expiry   KEYS[3..7] the five status sets (scored by expiry)
-- ARGV[1] cut-off ms   ARGV[2] most entries to drop from the created index in one call
-- Returns the number of records whose entries were dropped.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
for i = 3, 7 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1])
end
return #expired
