-- KEYS (3): fences leases job
-- Extends a claim's lease, by Redis's clock, while the claim is still the job's.
-- ARGV[1] job id   ARGV[2] fence   ARGV[3] lease ms
-- Returns 1 when renewed, 0 when the claim moved on (taken over, finished, cancelled).
if claim_token(ARGV[1], redis.call('GET', K.job)) ~= ARGV[2] then
  return 0
end
redis.call('ZADD', K.leases, now_ms() + tonumber(ARGV[3]), ARGV[1])
return 1
