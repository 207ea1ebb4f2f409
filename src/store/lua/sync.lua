-- Copies a record written elsewhere (the in-memory fallback during an outage) into Redis, when
-- Redis still holds the version that copy started from (nobody else wrote meanwhile) or holds
-- nothing (the record was lost with a Redis restart), and never over a final record.
-- KEYS as in put.lua.
-- ARGV[1] base version (what Redis held when the copy diverged; 0: created during the outage)
-- ARGV[2] record JSON   ARGV[3] remaining TTL seconds   ARGV[4] created ms   ARGV[5] expires ms
-- ARGV[6] job id   ARGV[7] '1' to queue the job (pending, and nobody runs it)   ARGV[8] status
-- ARGV[9] lease expiry ms or ''   ARGV[10] '1' when the record is final with a webhook to deliver
-- ARGV[11] now ms
-- Returns 1 when copied, 0 when Redis's record moved on (Redis wins).
local current = redis.call('GET', KEYS[1])
local id = ARGV[6]
local previous = nil
if current then
  local version
  version, previous = version_and_status(current)
  if version ~= tonumber(ARGV[1]) or is_final(previous) then
    return 0
  end
end
redis.call('SETEX', KEYS[1], ARGV[3], ARGV[2])
index_record(id, previous, ARGV[8], ARGV[4], ARGV[5], ARGV[9])
if ARGV[10] == '1' then
  redis.call('ZADD', KEYS[13], 'NX', ARGV[11], id)
end
if ARGV[7] == '1' then
  redis.call('LREM', KEYS[4], 0, id)
  redis.call('RPUSH', KEYS[4], id)
end
return 1
