-- Shared by the job scripts, prepended when a script is loaded after the prelude generated from
-- src/store/keys.ts: `K` (the KEYS the script declares in its header, by name), `STATUSES`,
-- `FINAL`, and `job_key(id)`/`log_key(id)` for jobs found in an index (from K.job_prefix).
-- Options come as one JSON object (cjson); records as JSON strings that lead with version, status
-- and attempts, so one anchored match reads those without decoding a possibly large report.

-- Now by Redis's clock: every lease, retry time and claim is decided by it, never by a host's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- version, status, attempts of a stored record ('deleted' for a tombstone).
local function header(json)
  local version, status, attempts = string.match(json, '^{"version":(%d+),"status":"(%a+)","attempts":(%d+)')
  if version then
    return tonumber(version), status, tonumber(attempts)
  end
  version, status = string.match(json, '^{"version":(%d+),"status":"(%a+)"')
  if version then
    return tonumber(version), status, 0
  end
  local decoded = cjson.decode(json)
  return tonumber(decoded.version), decoded.status, tonumber(decoded.attempts or 0)
end

local function is_final(status)
  return FINAL[status] == true
end

local function status_key(status)
  return K['status_' .. status]
end

-- The write counter (K.seq): every script that writes a record, claims or enqueues takes a value
-- of it (one: its first queue position or fencing token shares its write's), and replies carry
-- it. A replica that saw a value Redis no longer reaches knows Redis went back in time (a
-- failover to a replica that lagged, a restart from an older snapshot). SEQ: the last
-- value this script took; UNSPENT: that value while no queue position or fencing token holds it.
local SEQ = nil
local UNSPENT = nil
local function tick()
  SEQ = redis.call('INCR', K.seq)
  UNSPENT = SEQ
  return SEQ
end

-- A counter value that no queue position or fencing token has ever held: the one this script's
-- write took, while still unspent (one INCR serves a write and the enqueue or claim it makes),
-- or the next.
local function unique_value()
  local value = UNSPENT or tick()
  UNSPENT = nil
  return value
end

-- The counter as this script leaves it.
local function seq_now()
  return SEQ or tonumber(redis.call('GET', K.seq) or '0')
end

-- Takes the counter's next value (see tick), unless Redis is behind what the caller saw
-- (`floor`: the highest counter value its replies carried): then it lost writes the caller saw
-- land, nothing may be claimed or written until replicas put their copies back (epoch.lua), and
-- the counter is left as it was. The one INCR both checks and takes. Returns whether Redis is
-- behind, and the counter.
local function behind_else_tick(floor)
  local value = redis.call('INCR', K.seq)
  if floor ~= nil and floor > 0 and value <= floor then
    redis.call('DECR', K.seq)
    return true, value - 1
  end
  SEQ = value
  UNSPENT = value
  return false, value
end

-- Admission of a create with Redis's maxmemory set: the memory in use, plus `a.reserve` bytes
-- for each unfinished job (a finished record and its events are larger than a created one),
-- against `a.percent` of maxmemory. Returns used + reserved, and the limit (when maxmemory is 0,
-- the memory in use twice: always admitted).
local function admission(a)
  local info = redis.call('INFO', 'memory')
  local used = tonumber(string.match(info, 'used_memory:(%d+)'))
  local max = tonumber(string.match(info, 'maxmemory:(%d+)'))
  if not max or max == 0 then
    -- No limit: nothing to count the unfinished jobs against.
    return used, used
  end
  local unfinished = redis.call('ZCARD', K.status_pending) + redis.call('ZCARD', K.status_processing)
  return used + (unfinished + 1) * a.reserve, math.floor(max * a.percent / 100)
end

-- Fair share: besides K.queue (every queued job, by position), each tenant (a job's owner; ''
-- for the open API's jobs) has a queue of its own, and K.tenants rings the tenants that have
-- queued jobs, scored by when each joined or was last served. A claim takes the head of the
-- tenant served longest ago, so a tenant's backlog never holds back another tenant's jobs.
local function tenant_queue(tenant)
  return K.queue .. ':owner:' .. tenant
end

-- A tenant's jobs in one status, by creation time: a status-filtered list of a tenant reads its
-- page, not the tenant's whole history, and its running jobs are counted for its limit. Like
-- the tenant's creation index, it lives as long as the newest job that entered it; entries of
-- records gone are dropped as lists read them.
local function owner_status_key(tenant, status)
  return K.created .. ':owner:' .. tenant .. ':' .. status
end

-- Where the build of the tenants' status indexes for older records stands: a rank in K.created,
-- or 'done' (lists filter by them only then; see sweep-orphans.lua).
local function backfill_key()
  return K.created .. ':owner-status-backfill'
end

-- Tenants at their limit of running jobs (c.running) leave the ring for this set, scored by when
-- they were parked, until one of their jobs stops running (or a claim finds them under it).
local function parked_key()
  return K.tenants .. ':parked'
end

-- When each tenant that left the ring was last served (its ring score then).
local function served_key()
  return K.tenants .. ':served'
end

-- A tenant leaves the ring (nothing queued, or parked), its place remembered.
local function leave_ring(tenant, score)
  redis.call('ZREM', K.tenants, tenant)
  redis.call('HSET', served_key(), tenant, score)
end

-- A tenant joins the ring where round-robin has it: behind every tenant served before it was
-- last served, so leaving and joining again wins no turn; a tenant new to the ring, or idle
-- since before every tenant in it was served, goes first: its job waits one claim, not a round.
local function join_ring(tenant)
  if redis.call('ZSCORE', K.tenants, tenant) then
    return
  end
  local front = redis.call('ZRANGE', K.tenants, 0, 0, 'WITHSCORES')
  local score = seq_now() + 0.5
  if #front > 0 then
    score = tonumber(front[2]) - 0.25
    local served = tonumber(redis.call('HGET', served_key(), tenant) or '')
    if served and served > score then
      score = served
    end
  end
  redis.call('ZADD', K.tenants, score, tenant)
end

local function unpark(tenant)
  if redis.call('ZREM', parked_key(), tenant) == 1 and redis.call('EXISTS', tenant_queue(tenant)) == 1 then
    join_ring(tenant)
  end
end

-- Whether `tenant` runs as many jobs as its limit allows (`running`: claim_jobs's c.running).
-- At the limit, the oldest entries of the index are checked against their records first: a
-- record that expired or was evicted while running left its entry behind, and must not hold
-- its tenant back (at most RUNNING_CHECKED records read, once per parking).
local RUNNING_CHECKED = 20
local function at_running_limit(running, tenant)
  if not running or tenant == '' then
    return false
  end
  local limit = running.of[tenant] or running.max
  if limit <= 0 then
    return false
  end
  local key = owner_status_key(tenant, 'processing')
  if redis.call('ZCARD', key) < limit then
    return false
  end
  for _, id in ipairs(redis.call('ZRANGE', key, 0, RUNNING_CHECKED - 1)) do
    local json = redis.call('GET', job_key(id))
    if not json or select(2, header(json)) ~= 'processing' then
      redis.call('ZREM', key, id)
    end
  end
  return redis.call('ZCARD', key) >= limit
end

-- The tenant of a stored record: serializeJob writes `owner` before any nested object, so its
-- first `"owner":` is the record's own (inside a string value every quote is escaped).
local function tenant_of(json)
  local at = string.find(json, '"owner":', 1, true)
  if not at then
    return ''
  end
  return string.match(json, '^"([^"]*)"', at + 8) or ''
end

-- Queue positions: appended after every other (+seq), or first in line (-seq), in K.queue and
-- in the tenant's own queue; a tenant new to the ring joins at its back.
local function enqueue(id, where, tenant)
  local seq = unique_value()
  local position = seq
  if where == 'head' then
    position = -seq
  end
  redis.call('ZADD', K.queue, position, id)
  redis.call('ZADD', tenant_queue(tenant), position, id)
  join_ring(tenant)
end

-- Takes a job out of the queues; a tenant with nothing left queued leaves the ring.
local function unqueue(id, tenant)
  redis.call('ZREM', K.queue, id)
  local queue = tenant_queue(tenant)
  if redis.call('ZREM', queue, id) == 1 and redis.call('ZCARD', queue) == 0 then
    local score = redis.call('ZSCORE', K.tenants, tenant)
    if score then
      leave_ring(tenant, score)
    end
  end
end

-- The next job in fair-share order: the head of the ring's first tenant, which the caller then
-- moves to the back (served_last). A tenant whose queue turns out empty leaves the ring here,
-- one claim later than it could have: cheaper than counting its queue at every claim. Returns
-- id, position, tenant; nil when nothing is queued. (Jobs in K.queue but in no tenant's queue,
-- from an older version, are put in theirs by sweep-orphans.lua.)
local function next_queued(running)
  for _ = 1, 100 do
    local ring = redis.call('ZRANGE', K.tenants, 0, 0, 'WITHSCORES')
    if #ring == 0 then
      return nil
    end
    local tenant = ring[1]
    if at_running_limit(running, tenant) then
      leave_ring(tenant, ring[2])
      redis.call('ZADD', parked_key(), seq_now(), tenant)
    else
      local head = redis.call('ZPOPMIN', tenant_queue(tenant))
      if #head > 0 then
        return head[1], head[2], tenant
      end
      leave_ring(tenant, ring[2])
    end
  end
  return nil
end

-- Moves a tenant to the back of the ring: behind every score given so far (a counter value),
-- without taking a value of its own.
local function served_last(tenant)
  redis.call('ZADD', K.tenants, seq_now() + 0.5, tenant)
end

-- Moves a record from the status set of `previous` to that of `status`, scored by when it
-- expires (the status sets are the expiry index as well).
local function index_status(id, previous, status, expires_ms)
  if previous and previous ~= status then
    redis.call('ZREM', status_key(previous), id)
  end
  redis.call('ZADD', status_key(status), expires_ms, id)
end

-- A key shared by many records lives as long as the one that lives longest: its expiry only
-- moves later (a copy synced with little time left must not cut it short).
local function live_until(key, expires_ms, now)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 or now + ttl < expires_ms then
    redis.call('PEXPIREAT', key, expires_ms)
  end
end

-- Keeps a tenant's status index (owner_status_key) in step; a tenant whose job stops running
-- may run another: it leaves the parked set.
local function index_owner_status(id, tenant, previous, status, created_ms, expires_ms, now)
  if tenant == '' or previous == status then
    return
  end
  if previous then
    redis.call('ZREM', owner_status_key(tenant, previous), id)
    if previous == 'processing' then
      unpark(tenant)
    end
  end
  local key = owner_status_key(tenant, status)
  redis.call('ZADD', key, created_ms, id)
  live_until(key, expires_ms, now)
end

-- Keeps the indexes of one record in step with a write of it: creation order (new records
-- only, also in its tenant's index when it has one (`tenant` not ''), which lives as long as the
-- tenant's newest job), its status set and its tenant's status index. `previous` is the status
-- held before (nil for a new record).
local function index_record(id, previous, status, created_ms, expires_ms, tenant, now)
  if not previous then
    redis.call('ZADD', K.created, created_ms, id)
    if tenant ~= '' then
      redis.call('ZADD', K.owner_created, created_ms, id)
      live_until(K.owner_created, expires_ms, now)
    end
  end
  index_status(id, previous, status, expires_ms)
  index_owner_status(id, tenant, previous, status, created_ms, expires_ms, now)
end

-- Tells every replica's subscriber that a record changed, so waiting readers (event streams,
-- long polls) wake at once instead of polling. K.notices is a channel, passed with the keys;
-- PUBLISH is set in the prelude (SPUBLISH on a Cluster, where the channel shares the job's slot).
-- A running record's notices go on a channel of their own (RedisKeys.runningNotices), which only
-- a process with a reader waiting listens to: most of a job's writes are its progress.
local function notify(id, version, status)
  local channel = K.notices
  if status == 'processing' then
    channel = channel .. RUNNING_NOTICES_SUFFIX
  end
  redis.call(PUBLISH, channel, id .. ' ' .. version .. ' ' .. status)
end

-- A job's event log (K.events) holds one "<id> <type> <data>" string per event; ids are
-- "<ms>-<seq>", as a Redis stream's.
local function event_entry(id, kind, data)
  return id .. ' ' .. kind .. ' ' .. data
end

-- id, type, data of an event entry.
local function parse_event(entry)
  return string.match(entry, '^(%S+) (%S+) (.*)$')
end

-- ms, seq of an event id, as numbers.
local function event_id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

-- The id of a job's next event: increasing even when Redis's clock goes back (a failover to a
-- node whose clock is behind).
local function next_event_id(now, last_id)
  if last_id then
    local ms, seq = event_id_parts(last_id)
    if ms >= now then
      return string.format('%.0f-%d', ms, seq + 1)
    end
  end
  return string.format('%.0f-0', now)
end

-- Appends an event to the job's log `key` unless its data is the last event's (nothing a client
-- sees changed): one event per visible change. A list of "id type data" strings, not a stream: a
-- stream preallocates a 4 KB node for its first entry. `log`: max_events; fresh (the log is new,
-- no last event to read); last_id and last_data (the last event, known to the caller: the log
-- is not read; no last_data: taken as changed); ttl, set when the log starts and again when `renew`;
-- final (the job ends: the final event is given its id, not appended; the caller drops the log).
-- Returns the id of the log's last event once appended (nil for a log left empty).
local function append_event(key, now, kind, data, log)
  local last_id, last_data = log.last_id, log.last_data
  if not last_id and not log.fresh then
    local last = redis.call('LINDEX', key, -1)
    if last then
      local _
      last_id, _, last_data = parse_event(last)
    end
  end
  if last_data == data then
    if log.renew then
      redis.call('EXPIRE', key, log.ttl)
    end
    return last_id
  end
  local id = next_event_id(now, last_id)
  if log.final then
    -- A finished job's log goes in the write that ends it (the caller drops it): a resume needs
    -- only the final event, which the finished record keeps (its id, and its head as the
    -- event's data: see last_event_of); the rest would hold memory for a day no client can use.
    return id
  end
  local length = redis.call('RPUSH', key, event_entry(id, kind, data))
  if length > log.max_events then
    redis.call('LTRIM', key, -log.max_events, -1)
  end
  if length == 1 or log.renew then
    redis.call('EXPIRE', key, log.ttl)
  end
  return id
end

-- The position just after the JSON value (a string, number, null or boolean) starting at `pos`.
local function value_end(json, pos)
  if string.sub(json, pos, pos) ~= '"' then
    return string.find(json, '[,}]', pos)
  end
  local i = pos + 1
  while true do
    local at = string.find(json, '["\\]', i)
    if not at then
      return nil
    end
    if string.sub(json, at, at) == '"' then
      return at + 1
    end
    i = at + 2
  end
end

-- The fields of a record's head, in serializeJob's order, after version, status and attempts.
local HEAD_FIELDS = {'updated_at', 'expires_at', 'worker', 'started_at', 'next_attempt_at', 'progress', 'error', 'current_step'}

-- A job's event data, from JSON texts, as keptEventData keeps it: the values, tab-separated,
-- without names or the job id (the reader puts them back: src/schemas/events.ts).
local function kept_event(status, attempts, progress, step, error)
  return status .. '\t' .. progress .. '\t' .. attempts .. '\t' .. error .. '\t' .. step
end

-- The head of a record laid out by serializeJob, from `pos` (just after version, status and
-- attempts): HEAD_FIELDS' JSON texts by name, and the position after them; nil for a record
-- laid out otherwise. One anchored match reads the usual record up to the step: the times and
-- the progress hold no comma, and the error ends at the first `,"current_step":` (inside a JSON
-- string a quote follows a backslash, or ends the string, and then no name follows); an error
-- that holds `,"` (one ending in a comma, or one that took in a later field) leaves the record
-- to the field-by-field reading, as does any other layout. The step is scanned as one value.
local HEAD_PATTERN = '^"updated_at":([^,]*),"expires_at":([^,]*),"worker":([^,]*),"started_at":([^,]*),' ..
  '"next_attempt_at":([^,]*),"progress":([^,]*),"error":(.-),"current_step":()'
local function read_head_by_field(json, pos)
  local head = {}
  for _, name in ipairs(HEAD_FIELDS) do
    local label = '"' .. name .. '":'
    if string.sub(json, pos, pos + #label - 1) ~= label then
      return nil
    end
    local stop = value_end(json, pos + #label)
    if not stop or string.sub(json, stop, stop) ~= ',' then
      return nil
    end
    head[name] = string.sub(json, pos + #label, stop - 1)
    pos = stop + 1
  end
  return head, pos
end
local function read_head(json, pos)
  local updated, expires, worker, started, next_attempt, progress, err, step_at = string.match(json, HEAD_PATTERN, pos)
  if updated and not string.find(err, ',"', 1, true) then
    local stop = value_end(json, step_at)
    if stop and string.sub(json, stop, stop) == ',' then
      return {updated_at = updated, expires_at = expires, worker = worker, started_at = started, next_attempt_at = next_attempt,
        progress = progress, error = err, current_step = string.sub(json, step_at, stop - 1)}, stop + 1
    end
    return nil
  end
  return read_head_by_field(json, pos)
end

-- Where a record as serializeJob lays it out keeps the id of its log's last event: after the
-- head, and in a running record after its claim's token. A finished record keeps its final
-- event's id there, its log being gone (see append_event). Read once per record and script:
-- a script asks about the same record several times (strings compare by reference in Lua), and
-- the table is new on each call. false for a record laid out otherwise.
local slots = {}
local function slot_of(json)
  local slot = slots[json]
  if slot ~= nil then
    return slot
  end
  slot = false
  local version, status, attempts, pos = string.match(json, '^{"version":(%d+),"status":"(%a+)","attempts":(%d+),()')
  if status == 'pending' or status == 'processing' or is_final(status) then
    local head, rest = read_head(json, pos)
    local token = nil
    if head and status == 'processing' then
      token, rest = string.match(json, '^"fence":"([^"]*)",()', rest)
    end
    if head and (token or status ~= 'processing') then
      slot = {rest = rest, status = status, attempts = attempts, head = head, version = version, token = token}
    end
  end
  slots[json] = slot
  return slot
end

-- The slot of a record (see slot_of), whose token must be `fence` when given: that position, the
-- status, attempts, head, version and a running record's token; nil for a record laid out otherwise.
local function event_slot(json, fence)
  local slot = slot_of(json)
  if not slot or (fence and slot.token and slot.token ~= fence) then
    return nil
  end
  return slot.rest, slot.status, slot.attempts, slot.head, slot.version, slot.token
end

-- The claim token a running record laid out by serializeJob carries in its head; nil for any
-- other record (or none).
local function head_token(json)
  local slot = json and slot_of(json)
  return slot and slot.token or nil
end

-- Where a claim's token is kept. A running record laid out by serializeJob carries it in its head:
-- only a pending record is claimed, and the write that begins it under a claim puts that claim's
-- token there, so while the record runs it is its claim's (a write ending the claim changes the
-- record). K.fences holds the token of any other claimed job (claimed and not begun, or its
-- record laid out otherwise), and nothing for a record that carries it: a claim that begins its
-- job at once, as a busy runner's do, writes no entry and leaves none to drop.
-- The token of the claim job `id` (its record `json`) is held under.
local function claim_token(id, json)
  return head_token(json) or redis.call('HGET', K.fences, id)
end

-- A write under the claim `fence` stores `json` for job `id`: the token stays in the record when
-- the record carries it (and K.fences's entry goes, unless the record written over, `previous`,
-- carried it too: then there is none), else in K.fences.
local function keep_token(id, json, fence, previous)
  if head_token(json) ~= fence then
    redis.call('HSET', K.fences, id, fence)
  elseif not head_token(previous) then
    redis.call('HDEL', K.fences, id)
  end
end

-- The claim of a job (its lease and fencing token) ends: nobody may write for it any more.
-- `by_holder_in_record`: its holder ends it, and the record carries its token, so K.fences has
-- no entry to drop. Any other end (a takeover, cancel, delete, re-seed) clears it anyway: an
-- older version's claim keeps an entry beside the record's token.
local function end_claim(id, by_holder_in_record)
  redis.call('ZREM', K.leases, id)
  if not by_holder_in_record then
    redis.call('HDEL', K.fences, id)
  end
end

-- A running record keeps a run of spaces (JSON white space) after its kept id: a progress write
-- whose head is no longer than the old one writes it over the old in place (SETRANGE), padded
-- with spaces, instead of reading and writing the whole record. Redis's Lua hashes every byte of
-- every string it makes (a record read, cut or joined), so a rewrite of the record costs it in
-- proportion to the record; the head in place costs it the head. 32: the head (its step's
-- text, mostly) may grow by that many bytes before a write makes the record again (with the
-- spaces renewed); a head that shrinks leaves its bytes to the spaces.
local SLACK = '                                '

-- Where the record goes on after the spaces at `pos` (see SLACK).
local function past_slack(json, pos)
  return string.match(json, '^ *()', pos)
end

-- Where the record goes on after a kept id at `pos`, whatever it holds, and the spaces after it
-- (`pos` when there is neither).
local function past_kept_id(json, pos)
  return past_slack(json, string.match(json, '^"last_event_id":"[^"]*",()', pos) or pos)
end

-- The kept id is tagged with the version of the record that keeps it ("<version>:<id>"): a
-- replica of an earlier release copies the field along unchanged when it writes the record
-- (bumping its version) and appends an event of its own, so an id whose tag is not the record's
-- version is stale, and the log is read instead. Returns the id (nil when absent or stale) and
-- where the record goes on after the field and the spaces after it (see past_kept_id).
local function kept_id(json, pos, version)
  local tag, id, after = string.match(json, '^"last_event_id":"(%d+):(%d+%-%d+)",()', pos)
  if tag and tag == tostring(version) then
    return id, past_slack(json, after)
  end
  return nil, past_kept_id(json, pos)
end

local function kept_id_field(version, event_id)
  return '"last_event_id":"' .. version .. ':' .. event_id .. '",'
end

-- The record with `event_id` kept as its last event's id (see event_slot), where the scripts
-- that append its next event take it instead of reading the log (see last_event_of); the record
-- as given when it has no such place.
local function with_last_event(json, event_id, fence)
  if not event_id then
    return json
  end
  local rest, status, _, _, version = event_slot(json, fence)
  if not rest then
    return json
  end
  local slack = ''
  if status == 'processing' then
    slack = SLACK
  end
  return string.sub(json, 1, rest - 1) .. kept_id_field(version, event_id) .. slack .. string.sub(json, past_kept_id(json, rest))
end

-- The last event of a record that keeps its id (see with_last_event): the id, and the event's
-- data, which is the record's head as an event (every write that changes what a client sees
-- appends one), and its status. nil for a record that does not keep it: its log is read instead.
local function last_event_of(json)
  local rest, status, attempts, head, version = event_slot(json)
  local id = rest and kept_id(json, rest, version)
  if not id then
    return nil
  end
  return id, kept_event(status, attempts, head.progress, head.current_step, head.error), status
end

-- The events of a job after `after_id` ('' for all), oldest first, at most `limit`, as {id, type,
-- data}: from its log; a finished job whose log is gone has its final event read from its record.
local function events_after(log, job, after_id, limit)
  local after_ms, after_seq = -1, -1
  if after_id ~= '' then
    after_ms, after_seq = event_id_parts(after_id)
  end
  local entries = redis.call('LRANGE', log, 0, -1)
  if #entries == 0 then
    local json = redis.call('GET', job)
    local id, data, status = nil, nil, nil
    if json then
      id, data, status = last_event_of(json)
    end
    if id and is_final(status) then
      entries = {event_entry(id, status, data)}
    end
  end
  local found = {}
  for _, entry in ipairs(entries) do
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
end

-- A pending record as it is once attempt `attempts + 1` begins under the claim `fence`: what the
-- runner's start write would store, built from the record's JSON without decoding it (cjson would
-- reorder it and turn [] into {}). `s`: the JSON texts of worker, step, now and expiry time.
-- Returns the new record in two parts, its head (the token included) and the rest, where the id
-- of its start event goes between them (see with_last_event), its event data and version; nil
-- for a record not laid out by serializeJob (the runner then starts the job itself).
local function start_record(json, s, fence)
  local slot = slot_of(json)
  if not slot or slot.status ~= 'pending' or string.sub(json, -2) ~= ']}' then
    return nil
  end
  local head = slot.head
  -- The pending record's last event id goes: the running record keeps its start event's (see start_claimed).
  local body = string.sub(json, past_kept_id(json, slot.rest), -3)
  if not string.find(body, '"attempt_history":[', 1, true) then
    return nil
  end
  local attempt = tonumber(slot.attempts) + 1
  local version = tonumber(slot.version) + 1
  local started_at = head.started_at
  if started_at == 'null' then
    started_at = s.now
  end
  local separator = ','
  if string.sub(body, -1) == '[' then
    separator = ''
  end
  -- The claim's token rides in a running record's head (see serializeJob): progress.lua checks it there.
  local record_head = '{"version":' .. version .. ',"status":"processing","attempts":' .. attempt ..
    ',"updated_at":' .. s.now .. ',"expires_at":' .. s.expires .. ',"worker":' .. s.worker .. ',"started_at":' .. started_at ..
    ',"next_attempt_at":null,"progress":' .. head.progress .. ',"error":' .. head.error .. ',"current_step":' .. s.step ..
    ',"fence":"' .. fence .. '",'
  local rest = body .. separator .. '{"attempt":' .. attempt .. ',"worker":' .. s.worker .. ',"started_at":' .. s.now ..
    ',"ended_at":null,"outcome":"running","error":null}]}'
  return record_head, rest, kept_event('processing', attempt, head.progress, s.step, head.error), version
end

-- Begins the attempt of a claimed job (see start_record), or returns nil: past its last
-- attempt, or a record not laid out by serializeJob (the runner then decides). `s`: the claim's
-- start options.
local function start_claimed(id, json, attempts, now, s, tenant, fence)
  if attempts >= s.max_attempts then
    return nil
  end
  local record_head, rest, event, version = start_record(json, s, fence)
  if not record_head then
    return nil
  end
  local last_id, last_data = last_event_of(json)
  local event_id = append_event(log_key(id), now, 'status', event, {max_events = s.max_events, ttl = s.ttl, last_id = last_id, last_data = last_data})
  local record
  if event_id then
    record = record_head .. kept_id_field(version, event_id) .. SLACK .. rest
  else
    record = record_head .. SLACK .. rest
  end
  redis.call('SETEX', job_key(id), s.ttl, record)
  index_status(id, 'pending', 'processing', now + s.ttl * 1000)
  if tenant ~= '' then
    local created_ms = redis.call('ZSCORE', K.created, id)
    index_owner_status(id, tenant, 'pending', 'processing', tonumber(created_ms or now), now + s.ttl * 1000, now)
  end
  notify(id, version, 'processing')
  return record
end

-- Claims up to `c.limit` jobs: retries that are due join the queue (at most `c.promote`; 0: none), jobs
-- are taken from the head of the queue, and each pending one gets a lease (Redis's clock) and a
-- new fencing token, all at once; with `c.start`, each one's attempt also begins here. Ids whose
-- record is gone or no longer pending leave the queue: there is nothing to run.
-- Returns {{id, fence, record JSON, started (1, or absent)}, ...}, oldest first; false when
-- Redis is behind `c.floor` (see behind_else_tick): checked once there is something to move or
-- claim, before either, so an idle claim stays one ZPOPMIN.
local function claim_jobs(now, c)
  -- Moving retries and claiming are writes: not on data older than the caller saw (asked once).
  local checked = false
  local function behind()
    if checked or not c.floor then
      return false
    end
    checked = true
    return (behind_else_tick(c.floor))
  end
  if c.promote > 0 then
    local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, c.promote)
    if #due > 0 and behind() then
      return false
    end
    for _, id in ipairs(due) do
      redis.call('ZREM', K.delayed, id)
      local json = redis.call('GET', job_key(id))
      enqueue(id, 'tail', json and tenant_of(json) or '')
    end
  end
  if c.running then
    -- A tenant parked while a job of its stopped running unnoticed (its record expired, a
    -- limit raised) is not parked for good: the longest parked is looked at once per claim.
    local parked = redis.call('ZRANGE', parked_key(), 0, 0)
    if #parked > 0 and not at_running_limit(c.running, parked[1]) then
      unpark(parked[1])
    end
  end
  local taken = {}
  for _ = 1, c.limit * 10 do
    if #taken >= c.limit then
      break
    end
    local id, position, tenant = next_queued(c.running)
    if not id then
      break
    end
    if behind() then
      redis.call('ZADD', tenant_queue(tenant), position, id)
      redis.call('ZADD', K.tenants, position, tenant)
      return false
    end
    -- An id no longer in K.queue was taken out of the queue (cancelled, deleted): nothing to run.
    local json = redis.call('ZREM', K.queue, id) == 1 and redis.call('GET', job_key(id))
    if json then
      local _, status, attempts = header(json)
      if status == 'pending' then
        -- The fencing token is a fresh value of the write counter: no two claims share one,
        -- and after Redis went back in time the counter is raised past every value a replica
        -- saw (epoch.lua), so no claim reuses a token a living worker still holds.
        local fence = 'r' .. unique_value()
        redis.call('ZADD', K.leases, now + c.lease_ms, id)
        local started = c.start and start_claimed(id, json, attempts, now, c.start, tenant, fence)
        if started then
          taken[#taken + 1] = {id, fence, started, 1}
        else
          redis.call('HSET', K.fences, id, fence)
          taken[#taken + 1] = {id, fence, json}
        end
      end
    end
    served_last(tenant)
  end
  return taken
end

-- What a script keeps between the library's functions while it runs (SEQ, UNSPENT, slots), set
-- as a new call finds it: a script sent whole (EVALSHA) defines it all again on every call, but
-- a Redis Function's library is defined once (FUNCTION LOAD), so its calls share these locals.
local function begin_call()
  SEQ = nil
  UNSPENT = nil
  slots = {}
end
