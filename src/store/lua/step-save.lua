-- KEYS (3): fences steps job
-- Keeps one checkpointed step's result, while the claim that ran it is still the job's: a
-- stale worker's result is refused like any of its writes. The steps live as long as a record.
-- ARGV[1] job id   ARGV[2] fence   ARGV[3] step name   ARGV[4] result JSON   ARGV[5] ttl (s)
-- Returns 1 when kept, 0 when the claim moved on.
if claim_token(ARGV[1], redis.call('GET', K.job)) ~= ARGV[2] then
  return 0
end
redis.call('HSET', K.steps, ARGV[3], ARGV[4])
redis.call('EXPIRE', K.steps, tonumber(ARGV[5]))
return 1
