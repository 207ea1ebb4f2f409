-- KEYS (18): job events steps created owner_created queue tenants seq leases fences delayed webhooks notices status_*
-- Copies a record this replica holds into Redis.
--   mode 'outage': a change made here while Redis was out of reach; copied when Redis still
--     holds `base` (what it held when the copy diverged; 0: nothing) and nothing final.
--   mode 'create': a create whose reply never came (it may have run): copied only when Redis
--     holds nothing, so the job exists exactly once.
--   mode 'reseed': Redis lost its data; the copy goes back unless Redis holds a newer record.
--     A final copy wins over any unfinished record (a finished job never runs again), with a
--     version above Redis's.
-- ARGV[1] options: mode, base, version, ttl_ms (remaining), created_ms, status, queue (true: a
--   pending job nobody runs: queue it), delay_ms (queue it only after this long), webhook,
--   fence and lease_ms (a claim held here: it moves with the record), tenant (see put.lua)
-- ARGV[2] record JSON   ARGV[3] job id
-- Returns {1 when copied or 0 when Redis's record wins, the write counter}.
local o = cjson.decode(ARGV[1])
local id = ARGV[3]
local json = ARGV[2]
local now = now_ms()
local current = redis.call('GET', K.job)
local previous = nil
local written_version = o.version
if current then
  local version
  version, previous = header(current)
  if previous == 'deleted' or is_final(previous) or o.mode == 'create' then
    return {0, seq_now()}
  end
  if o.mode == 'outage' and version ~= o.base then
    return {0, seq_now()}
  end
  if o.mode == 'reseed' and version >= o.version then
    if not is_final(o.status) then
      return {0, seq_now()}
    end
    json = string.gsub(json, '^{"version":%d+', '{"version":' .. (version + 1), 1)
    written_version = version + 1
  end
end
if is_final(o.status) then
  -- A finished job keeps its final event's id in place of its log (see append_event): the copy's
  -- final event follows the last one the log holds, and the log and steps go.
  local last = redis.call('LINDEX', K.events, -1)
  local kept = with_last_event(json, next_event_id(now, last and parse_event(last)))
  if kept ~= json then
    json = kept
    redis.call('DEL', K.events, K.steps)
  end
end
redis.call('SET', K.job, json, 'PX', o.ttl_ms)
tick()
index_record(id, previous, o.status, o.created_ms, now + o.ttl_ms, o.tenant, now)
if o.fence then
  -- An older version's entry may sit beside a token Redis's record carries: cleared either way.
  keep_token(id, json, o.fence, nil)
  redis.call('ZADD', K.leases, now + o.lease_ms, id)
elseif o.status ~= 'processing' then
  end_claim(id)
end
if o.webhook then
  redis.call('ZADD', K.webhooks, 'NX', now, id)
end
if previous == 'pending' and o.status ~= 'pending' then
  unqueue(id, o.tenant)
end
if o.queue and o.delay_ms and o.delay_ms > 0 then
  redis.call('ZADD', K.delayed, now + o.delay_ms, id)
elseif o.queue then
  enqueue(id, 'tail', o.tenant)
end
notify(id, written_version, o.status)
return {1, seq_now()}
