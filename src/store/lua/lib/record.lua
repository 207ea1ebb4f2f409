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
