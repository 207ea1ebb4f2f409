-- KEYS (6): created status_*
-- Drops index entries of records whose TTL has run out (Redis expired the record itself). Every
-- live record sits in exactly one status set, scored by when it expires, so the status sets
-- are also the expiry index.
-- ARGV[1] most records whose entries are dropped in one call
-- Returns the number of records whose entries were dropped.
-- A few seconds of slack: a record's own TTL (whole seconds) may outlive its index score.
local cutoff = now_ms() - 5000
local left = tonumber(ARGV[1])
local dropped = 0
for _, status in ipairs(STATUSES) do
  local key = status_key(status)
  if left <= 0 then
    break
  end
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff, 'LIMIT', 0, left)
  for _, id in ipairs(expired) do
    redis.call('ZREM', K.created, id)
    redis.call('ZREM', key, id)
  end
  left = left - #expired
  dropped = dropped + #expired
end
return dropped
