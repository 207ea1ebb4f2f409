-- Compare-and-set write of one job record, with its indexes and (optionally) its queue entry.
-- KEYS[1] job:<id>   KEYS[2] jobs:created (zset)   KEYS[3] jobs:expiry (zset)   KEYS[4] jobs:pending (list)
-- ARGV[1] expected version (0: must not exist)   ARGV[2] record JSON   ARGV[3] TTL seconds
-- ARGV[4] created ms   ARGV[5] expires ms   ARGV[6] job id   ARGV[7] '' | 'tail' | 'head'
-- Returns {1} when written, {0, current JSON} on a version or final-state conflict, {0} when missing.
local current = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[1])
if current then
  local version, status = version_and_status(current)
  if version ~= expected or is_final(status) then
    return {0, current}
  end
elseif expected ~= 0 then
  return {0}
end
redis.call('SETEX', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
if ARGV[7] == 'tail' then
  redis.call('RPUSH', KEYS[4], ARGV[6])
elseif ARGV[7] == 'head' then
  redis.call('LPUSH', KEYS[4], ARGV[6])
end
return {1}
