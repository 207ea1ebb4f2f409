-- Claims due webhook deliveries: each id due at ARGV[1] is pushed to ARGV[2] (its claim), so
-- no other replica takes it meanwhile; a claimer that dies leaves it due again at ARGV[2].
-- KEYS[1] webhooks:due   ARGV[1] now ms   ARGV[2] claim expiry ms   ARGV[3] most ids
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return due
