-- KEYS (19): job events steps job_prefix created owner_created queue tenants leases fences delayed seq webhooks notices status_*
-- Compare-and-set write of one job record, with everything that indexes it, in one step.
-- ARGV[1] options: expected (version; 0: must not exist), ttl (s), created_ms, status,
--   enqueue ('' | 'tail' | 'head' | 'delayed'), retry_in_ms, event (event data JSON),
--   max_events, webhook (true: final with a webhook to deliver), amend_final, fence (the
--   writer's claim), lease_ms (extend the lease of a processing write), takeover (reaper),
--   claim_next (or
--   absent: claim.lua's options, for the worker's next jobs once this one's attempt ended),
--   floor (the highest write counter the caller saw), admit (a create, or absent): percent
--   (of maxmemory creates may fill) and reserve (bytes kept per unfinished job, to finish),
--   tenant (the job's owner, '' for none: its queue and its indexes), max_queued (a create, or absent: refused
--   when the tenant has this many jobs queued)
-- ARGV[2] record JSON   ARGV[3] job id
-- Returns {1, claims or false, counter} when written (claims: as claim.lua's, when claim_next);
-- {0, current} on a version or final-state conflict ({0} when the record is gone);
-- {0, current, 'fenced'} when the claim moved on or a taken-over lease is alive;
-- {0, false, 'behind', counter} when Redis went back behind `floor`; {0, false, 'full', used
-- bytes, limit bytes} when a create would leave too little room for the jobs accepted to finish;
-- {0, false, 'quota', queued} when a create's tenant has max_queued jobs queued.
local o = cjson.decode(ARGV[1])
local id = ARGV[3]
-- A create under a memory limit is judged first: past maxmemory Redis refuses every write, the
-- INCR below too, and the admission's refusal names the cause.
if o.admit and o.expected == 0 then
  local used, limit = admission(o.admit)
  if used > limit then
    return {0, false, 'full', used, limit}
  end
end
-- The counter's value is taken before anything is read: a write refused below has spent one,
-- which does no harm.
local behind, counter = behind_else_tick(o.floor)
if behind then
  return {0, false, 'behind', counter}
end
local now = now_ms()
local current = redis.call('GET', K.job)
local previous = nil
if current then
  local version
  version, previous = header(current)
  if previous == 'deleted' then
    return {0}
  end
  if version ~= o.expected or (is_final(previous) and not (o.amend_final and previous == o.status)) then
    return {0, current}
  end
elseif o.expected ~= 0 then
  return {0}
end
if o.fence and claim_token(id, current) ~= o.fence then
  return {0, current or false, 'fenced'}
end
if o.max_queued and not current then
  local queued = redis.call('ZCARD', tenant_queue(o.tenant))
  if queued >= o.max_queued then
    return {0, false, 'quota', queued}
  end
end
if o.takeover then
  local lease = redis.call('ZSCORE', K.leases, id)
  if lease and tonumber(lease) > now then
    return {0, current or false, 'fenced'}
  end
end
index_record(id, previous, o.status, o.created_ms, now + o.ttl * 1000, o.tenant, now)
-- A new record has no claim to end.
if o.status ~= 'processing' and previous then
  end_claim(id, o.fence ~= nil and head_token(current) ~= nil)
elseif o.status == 'processing' and o.lease_ms then
  redis.call('ZADD', K.leases, now + o.lease_ms, id)
end
-- A write under a claim that begins the job, or rewrites a running record laid out otherwise,
-- moves the token into the record (see claim_token); a running record that does not carry it
-- keeps it in K.fences.
if o.fence and o.status == 'processing' then
  keep_token(id, ARGV[2], o.fence, current)
end
-- The webhook of a job that just ended is queued in the same step as its final state, so a
-- crash between the two cannot lose it (delivered at least once).
if o.webhook then
  redis.call('ZADD', K.webhooks, 'NX', now, id)
end
-- A pending job written under a claim (o.fence) is in neither the queue nor the delayed set:
-- the claim took it off the queue, and a queued job is never also delayed.
local unclaimed_pending = previous == 'pending' and not o.fence
if o.enqueue == 'delayed' then
  redis.call('ZADD', K.delayed, now + o.retry_in_ms, id)
elseif unclaimed_pending then
  redis.call('ZREM', K.delayed, id)
end
if unclaimed_pending and o.status ~= 'pending' then
  unqueue(id, o.tenant)
end
-- The job's event log (for SSE) gets an entry in the same step, unless nothing a client sees
-- changed, on every replica alike; the write that ends the job drops it, keeping the final
-- event's id in the record. Its TTL is set when it starts and renewed when the job is
-- queued, not on every write of a running job: a run is bounded (JOB_TIMEOUT_MS), and a
-- log that expired under a run longer than the TTL starts again, with the TTL, at its next entry.
local kind = 'progress'
if is_final(o.status) then
  kind = o.status
elseif previous ~= o.status then
  kind = 'status'
end
-- A record that keeps its last event (see last_event_of) has its log left unread.
local last_id, last_data = nil, nil
if current then
  last_id, last_data = last_event_of(current)
end
-- A finished record keeps its final event's id in place of its log (see append_event); one with
-- no place for it (laid out otherwise) keeps its log, the final event appended, as before.
local drops_log = is_final(o.status) and event_slot(ARGV[2]) ~= nil
local event_id = append_event(K.events, now, kind, o.event, {
  max_events = o.max_events, ttl = o.ttl, fresh = not previous,
  renew = o.status == 'pending' or (is_final(o.status) and not drops_log),
  final = drops_log, last_id = last_id, last_data = last_data
})
-- A finished job's checkpointed steps are done with, and so is its log once its record keeps
-- the final event: both would only hold memory for a day.
if drops_log then
  redis.call('DEL', K.steps, K.events)
elseif is_final(o.status) then
  redis.call('DEL', K.steps)
end
-- A record keeps its log's last event id (see with_last_event): a pending or finished one, or a
-- running one written under its claim.
redis.call('SETEX', K.job, o.ttl, with_last_event(ARGV[2], event_id, o.fence))
if o.enqueue == 'tail' or o.enqueue == 'head' then
  enqueue(id, o.enqueue, o.tenant)
end
notify(id, o.expected + 1, o.status)
-- The worker's slot is free once its attempt ended: its next jobs are claimed in the same step.
if o.claim_next and previous == 'processing' and o.status ~= 'processing' then
  return {1, claim_jobs(now, o.claim_next), seq_now()}
end
return {1, false, seq_now()}
