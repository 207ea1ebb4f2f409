-- KEYS (9): job_prefix created queue tenants seq delayed leases status_pending status_processing
-- Repairs jobs that lost their place (an index key evicted or lost while the record survived):
-- a pending record in no queue, retry set or lease is queued again (one in no tenant's queue
-- joins its tenant's, a tenant with queued jobs in neither the ring nor the parked set joins the
-- ring); a processing record with no lease gets one that has already run out, so the reaper
-- takes it over. Sweeps `count` ids of each status set per call from the given ranks. Also
-- builds the tenants' status indexes for records written before they existed, `count` records
-- a call, once (the progress is kept in Redis, shared by the replicas; see `backfill`).
-- ARGV[1] options: pending_from, processing_from, count
-- Returns {next pending rank, next processing rank, repaired} (ranks start again at 0 at the end).
local o = cjson.decode(ARGV[1])
local repaired = 0
local function sweep(status, from, repair)
  local ids = redis.call('ZRANGE', status_key(status), from, from + o.count - 1)
  for _, id in ipairs(ids) do
    local json = redis.call('GET', job_key(id))
    if json then
      local _, stored = header(json)
      if stored == status and repair(id, json) then
        repaired = repaired + 1
      end
    end
  end
  if #ids < o.count then
    return 0
  end
  return from + #ids
end
local next_pending = sweep('pending', o.pending_from, function(id, json)
  local tenant = tenant_of(json)
  local position = redis.call('ZSCORE', K.queue, id)
  if position and not redis.call('ZSCORE', tenant_queue(tenant), id) then
    -- Queued, but in no tenant's queue (that key was lost, or an older version queued it).
    redis.call('ZADD', tenant_queue(tenant), position, id)
    if not redis.call('ZSCORE', parked_key(), tenant) then
      join_ring(tenant)
    end
    return true
  end
  if position and not redis.call('ZSCORE', K.tenants, tenant) and not redis.call('ZSCORE', parked_key(), tenant) then
    -- Its tenant is in neither the ring nor the parked set (that key was lost).
    join_ring(tenant)
    return true
  end
  if position or redis.call('ZSCORE', K.delayed, id) or redis.call('ZSCORE', K.leases, id) then
    return false
  end
  enqueue(id, 'tail', tenant)
  return true
end)
local next_processing = sweep('processing', o.processing_from, function(id)
  if redis.call('ZSCORE', K.leases, id) then
    return false
  end
  redis.call('ZADD', K.leases, 0, id)
  return true
end)
-- The tenants' status indexes (owner_status_key) for records written before they existed.
local backfill = backfill_key()
local from = redis.call('GET', backfill)
if from ~= 'done' then
  from = tonumber(from or '0')
  local entries = redis.call('ZRANGE', K.created, from, from + o.count - 1, 'WITHSCORES')
  local now = now_ms()
  for i = 1, #entries, 2 do
    local json = redis.call('GET', job_key(entries[i]))
    if json then
      local _, status = header(json)
      local tenant = tenant_of(json)
      if tenant ~= '' and status ~= 'deleted' and redis.call('ZADD', owner_status_key(tenant, status), 'NX', entries[i + 1], entries[i]) == 1 then
        live_until(owner_status_key(tenant, status), now + math.max(0, redis.call('PTTL', job_key(entries[i]))), now)
      end
    end
  end
  if #entries < o.count * 2 then
    redis.call('SET', backfill, 'done')
  else
    redis.call('SET', backfill, from + o.count)
  end
end
return {next_pending, next_processing, repaired}
