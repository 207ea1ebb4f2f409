-- Claims up to `limit` jobs to run: retries that are due join the queue, jobs are taken from the
-- head of the queue, and each pending one gets a lease (Redis's clock) and a new fencing token,
-- all at once. Only one caller ever gets a given claim. Ids whose record is gone or no longer
-- pending (cancelled, deleted) leave the queue: there is nothing to run. With `start`, each
-- claimed job's attempt also begins here (processing, its running entry in the history, its
-- status event), as the runner's start write would: one step per job instead of two.
-- ARGV[1] options: lease_ms, limit, promote (most due retries to queue per call), start (or
--   absent): worker, step, now, expires (JSON texts), max_attempts, ttl (s), max_events
-- Returns {{id, fence, record JSON, started (1, or absent)}, ...}, oldest first.
local o = cjson.decode(ARGV[1])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, o.promote)
for _, id in ipairs(due) do
  redis.call('ZREM', K.delayed, id)
  enqueue(id, 'tail')
end

-- Begins the attempt of a claimed job, or returns nil (past its last attempt, or a record not
-- laid out by serializeJob): the runner then decides.
local function start(id, json, attempts)
  if attempts >= o.start.max_attempts then
    return nil
  end
  local record, event, version = start_record(id, json, o.start)
  if not record then
    return nil
  end
  redis.call('SETEX', K.job .. id, o.start.ttl, record)
  redis.call('ZREM', K.status_pending, id)
  redis.call('ZADD', K.status_processing, now + o.start.ttl * 1000, id)
  local log = K.job .. id .. ':log'
  if append_event(log, now, 'status', event, o.start.max_events) == 1 then
    redis.call('EXPIRE', log, o.start.ttl)
  end
  notify(id, version, 'processing')
  return record
end

local taken = {}
for _ = 1, o.limit * 10 do
  if #taken >= o.limit then
    break
  end
  local head = redis.call('ZPOPMIN', K.queue)
  if #head == 0 then
    break
  end
  local id = head[1]
  local json = redis.call('GET', K.job .. id)
  if json then
    local _, status, attempts = header(json)
    if status == 'pending' then
      local fence = 'r' .. redis.call('INCR', K.seq)
      redis.call('HSET', K.fences, id, fence)
      redis.call('ZADD', K.leases, now + o.lease_ms, id)
      local started = o.start and start(id, json, attempts)
      if started then
        taken[#taken + 1] = {id, fence, started, 1}
      else
        taken[#taken + 1] = {id, fence, json}
      end
    end
  end
end
return taken
