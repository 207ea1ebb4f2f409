-- Compare-and-set write of one job record, with everything that indexes it, in one step.
-- KEYS[1] job:<id>   KEYS[2] jobs:created   KEYS[3] jobs:expiry   KEYS[4] jobs:pending (list)
-- KEYS[5] jobs:leases (zset: lease expiry)   KEYS[6] jobs:delayed (zset: retry time)
-- KEYS[7..11] jobs:status:<pending|processing|completed|failed|cancelled> (zsets: record expiry)
-- ARGV[1] expected version (0: must not exist)   ARGV[2] record JSON   ARGV[3] TTL seconds
-- ARGV[4] created ms   ARGV[5] expires ms   ARGV[6] job id   ARGV[7] '' | 'tail' | 'head' | 'delayed'
-- ARGV[8] new status   ARGV[9] lease expiry ms ('' when the job holds no lease)   ARGV[10] retry time ms
-- KEYS[12] job:<id>:events (stream)   ARGV[11] event data JSON   ARGV[12] most events kept per job
-- KEYS[13] webhooks:due (zset: next delivery ms)   ARGV[13] '1' when the record is final with a
-- webhook to deliver   ARGV[14] '1' to amend a final record keeping its status   ARGV[15] now ms
-- Returns {1} when written, {0, current JSON} on a version or final-state conflict, {0} when missing.
local current = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[1])
local id = ARGV[6]
local status = ARGV[8]
-- Index upkeep is limited to what this write changes: a progress write runs 5 commands, not 8.
local previous = nil
if current then
  local version
  version, previous = version_and_status(current)
  if version ~= expected or (is_final(previous) and not (ARGV[14] == '1' and previous == status)) then
    return {0, current}
  end
elseif expected ~= 0 then
  return {0}
end
redis.call('SETEX', KEYS[1], ARGV[3], ARGV[2])
index_record(id, previous, status, ARGV[4], ARGV[5], ARGV[9])
-- The webhook of a job that just ended is queued in the same step as its final state, so a
-- crash between the two cannot lose it (delivered at least once).
if ARGV[13] == '1' then
  redis.call('ZADD', KEYS[13], 'NX', ARGV[15], id)
end
if ARGV[7] == 'delayed' then
  redis.call('ZADD', KEYS[6], ARGV[10], id)
elseif previous == 'pending' then
  redis.call('ZREM', KEYS[6], id)
end
-- The job's event stream (for SSE) gets an entry in the same step, unless nothing a client
-- sees changed (a lease renewal): one event per visible change, on every replica alike.
local last = redis.call('XREVRANGE', KEYS[12], '+', '-', 'COUNT', 1)[1]
if not (last and last[2][4] == ARGV[11]) then
  local kind = 'progress'
  if is_final(status) then
    kind = status
  elseif previous ~= status then
    kind = 'status'
  end
  redis.call('XADD', KEYS[12], 'MAXLEN', '~', ARGV[12], '*', 'type', kind, 'data', ARGV[11])
end
redis.call('EXPIRE', KEYS[12], ARGV[3])
if ARGV[7] == 'tail' then
  redis.call('RPUSH', KEYS[4], id)
elseif ARGV[7] == 'head' then
  redis.call('LPUSH', KEYS[4], id)
end
return {1}
