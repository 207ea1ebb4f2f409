-- Removes a job record, its index entries and any queue entry.
-- KEYS[1] job:<id>   KEYS[2] jobs:created   KEYS[3] jobs:expiry   KEYS[4] jobs:pending
-- ARGV[1] job id.   Returns 1 when the record existed.
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('LREM', KEYS[4], 0, ARGV[1])
return existed
