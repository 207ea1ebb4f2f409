-- KEYS (1): leases
-- Ids holding a lease that has not run out (Redis's clock), for operators' statistics.
-- ARGV[1] most ids
return redis.call('ZRANGEBYSCORE', K.leases, now_ms(), '+inf', 'LIMIT', 0, tonumber(ARGV[1]))
