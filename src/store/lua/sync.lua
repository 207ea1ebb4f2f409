-- Copies a record written elsewhere (the in-memory fallback during an outage) into Redis,
-- only when it is newer than what Redis holds and never over a final record.
-- KEYS[1] job:<id>   KEYS[2] jobs:created   KEYS[3] jobs:expiry   KEYS[4] jobs:pending
-- ARGV[1] version   ARGV[2] record JSON   ARGV[3] remaining TTL seconds   ARGV[4] created ms
-- ARGV[5] expires ms   ARGV[6] job id   ARGV[7] '1' to queue the job (it is pending and nobody runs it)
-- Returns 1 when copied, 0 when Redis already had the same or a newer record.
local current = redis.call('GET', KEYS[1])
if current then
  local version, status = version_and_status(current)
  if version >= tonumber(ARGV[1]) or is_final(status) then
    return 0
  end
end
redis.call('SETEX', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
if ARGV[7] == '1' then
  redis.call('LREM', KEYS[4], 0, ARGV[6])
  redis.call('RPUSH', KEYS[4], ARGV[6])
end
return 1
