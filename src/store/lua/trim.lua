-- Drops index entries of records whose TTL has run out (Redis expired the record itself).
-- ARGV[1] most entries to drop from the created index in one call
-- Returns the number of records whose entries were dropped.
-- A few seconds of slack: a record's own TTL (whole seconds) may outlive its index score.
local cutoff = now_ms() - 5000
local expired = redis.call('ZRANGEBYSCORE', K.expiry, '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(expired) do
  redis.call('ZREM', K.created, id)
  redis.call('ZREM', K.expiry, id)
end
for _, key in ipairs({K.status_pending, K.status_processing, K.status_completed, K.status_failed, K.status_cancelled}) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
end
return #expired
