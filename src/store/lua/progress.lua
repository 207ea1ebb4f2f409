-- KEYS (4): job events notices seq
-- A running job's progress, written by the holder of its claim: the stored record's head is
-- patched (version, updated_at, progress, current_step) without the record being sent, decoded
-- or re-indexed, and its event and notice go out in the same step. The record's first HEAD_READ
-- bytes are read, and its head written over the old one in place, padded with the spaces a
-- running record keeps after it (see SLACK), so neither the record nor a copy of it is made.
-- A head longer than the old one and its spaces has the record written whole, with the spaces
-- renewed; one that runs past the bytes read (a long error of an earlier attempt, a long step)
-- has it read whole too, on every write while it does. The claim is checked by the
-- token a running record carries (see serializeJob) and the version the holder last wrote, so
-- no index is read and no lease re-scored (renewals do that), and the event's id follows the one
-- the record keeps (see with_last_event), so the log is not read: INCR, GETRANGE, RPUSH, SETRANGE,
-- PUBLISH (SET for SETRANGE when the head outgrew its room; a GET more when it runs past the
-- bytes read).
-- Like every record write it takes the write counter's next value, and the one INCR
-- also tells whether Redis went back behind `floor` (see behind_else_tick): then nothing is written.
-- ARGV[1] job id   ARGV[2] version the holder last wrote   ARGV[3] fence   ARGV[4] progress
-- ARGV[5] step (JSON text)   ARGV[6] updated_at (JSON text)   ARGV[7] the writer's now (ms: the
-- event id's time, kept increasing by next_event_id)   ARGV[8] max events   ARGV[9] TTL (s) of
-- a log that expired under a long run and starts again   ARGV[10] floor
-- Returns {1, version written, counter}, or {1, version held, counter} when nothing a client
-- sees would change; {0, false, 'behind', counter} when Redis is behind `floor`; {0} when the
-- record is not this claim's running record at that version (or is laid out otherwise).
local behind, counter = behind_else_tick(tonumber(ARGV[10]))
if behind then
  return {0, false, 'behind', counter}
end
-- Enough for a running record's head (its times, worker, step, token and kept id) unless its
-- error or step is long. Numbers as text: Redis would format a Lua number for each call.
local HEAD_READ, HEAD_LAST = 512, '511'

-- The parts of `json` (a record, or its first bytes) a progress write reads: version, attempts,
-- head, token field, the kept id and where the head and its spaces end. false when it is surely
-- not this claim's running record at the version named (or not laid out by serializeJob: its
-- first bytes tell); nil when what was read ends before the head, or the token, could be read.
local function running(json)
  local version, status, attempts, pos = string.match(json, '^{"version":(%d+),"status":"(%a+)","attempts":(%d+),()')
  if status ~= 'processing' or version ~= ARGV[2] then
    return false
  end
  local head, rest = read_head(json, pos)
  local fence = '"fence":"' .. ARGV[3] .. '",'
  if not head or rest + #fence - 1 > #json then
    return nil
  end
  if string.sub(json, rest, rest + #fence - 1) ~= fence then
    return false
  end
  -- The log's last event id, kept after the token (see with_last_event); a record written without
  -- it (sync.lua's copies), or with a stale one (see kept_id), has its log's last event read instead.
  local last_id, after = kept_id(json, rest + #fence, version)
  return version, attempts, head, fence, last_id, after
end

local json = redis.call('GETRANGE', K.job, '0', HEAD_LAST)
local whole = #json < HEAD_READ
local version, attempts, head, fence, last_id, after = running(json)
-- What was read must hold the head up to the kept id: else (cut short: a long error or step; or
-- a record that keeps no id, or a stale one) the whole record is read. A record that is surely
-- not the claim's (false) is not.
if not whole and version ~= false and not last_id then
  json = redis.call('GET', K.job)
  whole = true
  version, attempts, head, fence, last_id, after = running(json or '')
end
if not version then
  return {0}
end
if head.progress == ARGV[4] and head.current_step == ARGV[5] then
  return {1, tonumber(version), counter}
end
local event_id = append_event(K.events, tonumber(ARGV[7]), 'progress', kept_event('processing', attempts, ARGV[4], ARGV[5], head.error), {
  max_events = tonumber(ARGV[8]), ttl = tonumber(ARGV[9]), last_id = last_id
})
local written = tonumber(version) + 1
-- Formatted once (Redis's Lua formats a number each time it is joined to a string).
local written_text = tostring(written)
local new_head = '{"version":' .. written_text .. ',"status":"processing","attempts":' .. attempts ..
  ',"updated_at":' .. ARGV[6] .. ',"expires_at":' .. head.expires_at .. ',"worker":' .. head.worker ..
  ',"started_at":' .. head.started_at .. ',"next_attempt_at":' .. head.next_attempt_at .. ',"progress":' .. ARGV[4] ..
  ',"error":' .. head.error .. ',"current_step":' .. ARGV[5] .. ',' .. fence .. kept_id_field(written_text, event_id)
-- The old head and the spaces after it end just before `after` (or run past what was read: then
-- only spaces follow, and the read part is the room).
local room = after - 1
if #new_head <= room then
  redis.call('SETRANGE', K.job, '0', new_head .. string.rep(' ', room - #new_head))
else
  if not whole then
    json = redis.call('GET', K.job)
  end
  redis.call('SET', K.job, new_head .. SLACK .. string.sub(json, past_slack(json, after)), 'KEEPTTL')
end
notify(ARGV[1], written, 'processing')
return {1, written, counter}
