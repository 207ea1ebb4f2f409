-- KEYS (4): job events notices seq
-- A running job's progress, written by the holder of its claim: the stored record's head is
-- patched (version, updated_at, progress, current_step) without the record being sent, decoded
-- or re-indexed, and its event and notice go out in the same step. The claim is checked by the
-- token a running record carries (see serializeJob) and the version the holder last wrote, so
-- no index is read and no lease re-scored (renewals do that), and the event's id follows the one
-- the record keeps (see with_last_event), so the log is not read: INCR, GET, RPUSH, SET, PUBLISH.
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
local json = redis.call('GET', K.job)
if not json then
  return {0}
end
local version, status, attempts, pos = string.match(json, '^{"version":(%d+),"status":"(%a+)","attempts":(%d+),()')
if status ~= 'processing' or version ~= ARGV[2] then
  return {0}
end
local head, rest = read_head(json, pos)
local fence = '"fence":"' .. ARGV[3] .. '",'
if not head or string.sub(json, rest, rest + #fence - 1) ~= fence then
  return {0}
end
if head.progress == ARGV[4] and head.current_step == ARGV[5] then
  return {1, tonumber(version), counter}
end
rest = rest + #fence
-- The log's last event id, kept after the token (see with_last_event); a record written without
-- it (sync.lua's copies), or with a stale one (see kept_id), has its log's last event read instead.
local last_id, after = kept_id(json, rest, version)
local event_id = append_event(K.events, tonumber(ARGV[7]), 'progress', kept_event('processing', attempts, ARGV[4], ARGV[5], head.error), {
  max_events = tonumber(ARGV[8]), ttl = tonumber(ARGV[9]), last_id = last_id
})
local written = tonumber(version) + 1
redis.call('SET', K.job, '{"version":' .. written .. ',"status":"processing","attempts":' .. attempts ..
  ',"updated_at":' .. ARGV[6] .. ',"expires_at":' .. head.expires_at .. ',"worker":' .. head.worker ..
  ',"started_at":' .. head.started_at .. ',"next_attempt_at":' .. head.next_attempt_at .. ',"progress":' .. ARGV[4] ..
  ',"error":' .. head.error .. ',"current_step":' .. ARGV[5] .. ',' .. fence .. kept_id_field(written, event_id) ..
  string.sub(json, after), 'KEEPTTL')
notify(ARGV[1], written, 'processing')
return {1, written, counter}
