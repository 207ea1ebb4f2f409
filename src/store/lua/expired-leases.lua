-- KEYS (1): leases
-- Ids whose lease ran out by Redis's clock (their worker died or lost Redis).
-- ARGV[1] most ids   Returns the ids, longest expired first.
return redis.call('ZRANGEBYSCORE', K.leases, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
