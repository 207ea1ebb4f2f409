-- Shared by the scripts that read a stored record (prepended when a script is loaded).
-- Records are written with "version" and "status" first, so an anchored match reads both
-- without decoding a possibly large report; anything else is decoded in full.
local function version_and_status(json)
  local version, status = string.match(json, '^{"version":(%d+),"status":"(%a+)"')
  if not version then
    local decoded = cjson.decode(json)
    return tonumber(decoded.version), decoded.status
  end
  return tonumber(version), status
end

local function is_final(status)
  return status == 'completed' or status == 'failed' or status == 'cancelled'
end

-- The status sets come as KEYS[7..11], in this order.
local STATUS_KEY_INDEX = { pending = 7, processing = 8, completed = 9, failed = 10, cancelled = 11 }

local function status_key(status)
  return KEYS[STATUS_KEY_INDEX[status]]
end

-- Keeps the indexes of one record in step with a write of it (KEYS as in put.lua):
-- creation order (only for a new record), expiry, status set, and the lease index.
-- `previous` is the status held before this write (nil for a new record); `lease_ms` is '' when
-- the written record holds no lease.
local function index_record(id, previous, status, created_ms, expires_ms, lease_ms)
  if not previous then
    redis.call('ZADD', KEYS[2], created_ms, id)
  elseif previous ~= status then
    redis.call('ZREM', status_key(previous), id)
  end
  redis.call('ZADD', KEYS[3], expires_ms, id)
  redis.call('ZADD', status_key(status), expires_ms, id)
  if lease_ms ~= '' then
    redis.call('ZADD', KEYS[5], lease_ms, id)
  else
    redis.call('ZREM', KEYS[5], id)
  end
end
