-- KEYS (1): events
-- A job's events after an id, oldest first, from its log (see put.lua), in one round trip.
-- ARGV[1] after id ('' for the first)   ARGV[2] limit
-- Returns {{id, type, data}, ...}.
local limit = tonumber(ARGV[2])
local after_ms, after_seq = -1, -1
if ARGV[1] ~= '' then
  after_ms, after_seq = event_id_parts(ARGV[1])
end
local found = {}
for _, entry in ipairs(redis.call('LRANGE', K.events, 0, -1)) do
  if #found >= limit then
    break
  end
  local id, kind, data = parse_event(entry)
  local ms, seq = event_id_parts(id)
  if ms > after_ms or (ms == after_ms and seq > after_seq) then
    found[#found + 1] = {id, kind, data}
  end
end
return found
