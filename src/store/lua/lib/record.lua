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
