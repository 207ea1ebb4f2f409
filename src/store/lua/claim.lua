-- Claims up to ARGV[4] jobs to run: retries that are due join the queue, jobs are taken from the
-- head of the queue, and a lease is registered for each, all at once. Only one caller ever gets
-- a given id.
-- KEYS[1] jobs:pending   KEYS[2] jobs:delayed   KEYS[3] jobs:leases
-- ARGV[1] now ms   ARGV[2] lease expiry ms   ARGV[3] most due retries to move per call
-- ARGV[4] most jobs to take
-- Returns the ids taken, oldest first (empty when there is nothing to run).
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('RPUSH', KEYS[1], id)
end
local taken = {}
for _ = 1, tonumber(ARGV[4]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then
    break
  end
  redis.call('ZADD', KEYS[3], ARGV[2], id)
  taken[#taken + 1] = id
end
return taken
