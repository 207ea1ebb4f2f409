-- KEYS (6): epoch seq queue tenants delayed leases
-- Reads this Redis's data generation, founding it when there is none (a new or emptied Redis),
-- and checks that Redis did not go back in time: its write counter (K.seq) must not be below
-- the highest value the caller saw. When it is, Redis came back with older data under the same
-- epoch (a failover to a replica that lagged, a restart from an older snapshot):
-- - the counter is raised to what the caller saw, so no fencing token a living worker holds is
--   issued again;
-- - the first caller to notice moves Redis to a new epoch (marked `back-`), which tells every
--   replica to put back the copies it holds, as for a Redis that lost everything;
-- - and, once, every job Redis still has queued or leased waits `hold_ms` before it can be
--   claimed or taken over: a worker may still be running it under a claim Redis forgot, and a
--   replica may still hold its finished copy.
-- ARGV[1] options: candidate (a fresh epoch), floor (the highest counter the caller saw; 0:
--   none), known (the epoch the caller knows, or absent), hold_ms
-- Returns {epoch, 1 when this call founded or moved it, the counter as found, the counter now}.
local o = cjson.decode(ARGV[1])
local read = redis.call('MGET', K.epoch, K.seq)
local epoch = read[1]
local found = tonumber(read[2] or '0')
local counter = found
local moved = 0
if o.floor > found then
  redis.call('SET', K.seq, o.floor)
  counter = o.floor
  if epoch and epoch == o.known then
    epoch = 'back-' .. o.candidate
    redis.call('SET', K.epoch, epoch)
    moved = 1
    local now = now_ms()
    local until_ms = now + o.hold_ms
    local queued = redis.call('ZRANGE', K.queue, 0, -1)
    for _, id in ipairs(queued) do
      redis.call('ZADD', K.delayed, until_ms, id)
    end
    redis.call('DEL', K.queue)
    for _, tenant in ipairs(redis.call('ZRANGE', K.tenants, 0, -1)) do
      redis.call('DEL', tenant_queue(tenant))
    end
    redis.call('DEL', K.tenants)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.leases, '-inf', until_ms)) do
      redis.call('ZADD', K.leases, until_ms, id)
    end
  end
end
if not epoch then
  epoch = o.candidate
  redis.call('SET', K.epoch, epoch)
  moved = 1
end
return {epoch, moved, found, counter}
