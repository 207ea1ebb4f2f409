-- Claims up to `limit` jobs to run: retries that are due join the queue, jobs are taken from the
-- head of the queue, and each pending one gets a lease (Redis's clock) and a new fencing token,
-- all at once. Only one caller ever gets a given claim. Ids whose record is gone or no longer
-- pending (cancelled, deleted) leave the queue: there is nothing to run.
-- ARGV[1] options: lease_ms, limit, promote (most due retries to queue per call)
-- Returns {{id, fence, record JSON}, ...}, oldest first.
local o = cjson.decode(ARGV[1])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, o.promote)
for _, id in ipairs(due) do
  redis.call('ZREM', K.delayed, id)
  enqueue(id, 'tail')
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
    local _, status = header(json)
    if status == 'pending' then
      local fence = 'r' .. redis.call('INCR', K.seq)
      redis.call('HSET', K.fences, id, fence)
      redis.call('ZADD', K.leases, now + o.lease_ms, id)
      taken[#taken + 1] = {id, fence, json}
    end
  end
end
return taken
