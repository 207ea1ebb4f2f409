-- Claims an idempotency key for a request, or tells who holds it, in one atomic step.
-- KEYS[1] idempotency:<tenant>:<key>   ARGV[1] value (request fingerprint and job id)   ARGV[2] TTL seconds
-- Returns nil when this call claimed the key, else the value stored by the call that did.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return nil
end
return redis.call('GET', KEYS[1])
