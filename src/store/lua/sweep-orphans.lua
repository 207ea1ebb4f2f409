-- KEYS (8): job_prefix queue tenants seq delayed leases status_pending status_processing
-- Repairs jobs that lost their place (an index key evicted or lost while the record survived):
-- a pending record in no queue, retry set or lease is queued again (and one in no tenant's queue
-- joins its tenant's); a processing record with no
-- lease gets one that has already run out, so the reaper takes it over. Sweeps `count` ids of
-- each status set per call from the given ranks.
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
    -- Queued, but in no tenant's queue (that key was lost): claims would never reach it.
    redis.call('ZADD', tenant_queue(tenant), position, id)
    redis.call('ZADD', K.tenants, 'NX', tick(), tenant)
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
return {next_pending, next_processing, repaired}
