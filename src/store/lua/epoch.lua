-- KEYS (1): epoch
-- Reads this Redis's data generation, founding it when there is none (a new or emptied Redis).
-- ARGV[1] a fresh epoch, used only when none is stored
-- Returns {epoch, 1 when this call founded it}.
local epoch = redis.call('GET', K.epoch)
if epoch then
  return {epoch, 0}
end
redis.call('SET', K.epoch, ARGV[1])
return {ARGV[1], 1}
