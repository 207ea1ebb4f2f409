-- KEYS (1): webhooks
-- Claims due webhook deliveries (Redis's clock): each due id is pushed `lease_ms` ahead (its
-- claim), so no other replica takes it meanwhile; a claimer that dies leaves it due again then.
-- ARGV[1] lease ms   ARGV[2] most ids
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', K.webhooks, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZADD', K.webhooks, 'XX', now + tonumber(ARGV[1]), id)
end
return due
