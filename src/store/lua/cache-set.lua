-- Writes one entry of the shared cache and keeps the cache within its bound, the entries closest to expiring out first.
-- KEYS[1] the entry   KEYS[2] the index (entries by when they expire, Redis clock, microseconds)
-- ARGV[1] value   ARGV[2] ttl (s)   ARGV[3] most entries
-- Returns how many entries were evicted to make room.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]) * 1000000, KEYS[1])
-- Expired entries are gone already: only their index entries are left to drop. The bound then
-- takes those closest to expiring first.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over <= 0 then
  return 0
end
local oldest = redis.call('ZPOPMIN', KEYS[2], over)
for i = 1, #oldest, 2 do
  redis.call('DEL', oldest[i])
end
return over
