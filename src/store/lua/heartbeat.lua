-- One replica says it is here, connected, and how many jobs it holds that only it has (created
-- while it was cut off from Redis); the roster of every replica heard from within the grace comes
-- back, each with when it was last heard (Redis clock) and how far its wall clock is from Redis's.
-- KEYS[1] the roster (hash: replica -> JSON)
-- A heartbeat speaks for the moment it was sent: one held up on the way (a stalled link) is dated
-- when it left, by the replica's clock less its measured offset, so its count is not taken as news.
-- ARGV[1] replica   ARGV[2] jobs held only there   ARGV[3] its wall clock when sent (ms)
-- ARGV[4] grace (ms)   ARGV[5] its clock's offset from Redis's, as it last measured it (ms)
-- ARGV[6] '1': the replica is leaving, holding nothing of its own. Its entry is marked left, dated
-- by Redis's clock, and kept for the grace: deleted, the others would keep it as one Redis forgot.
-- A replica's name is its process's own: a heartbeat that arrives after the mark (sent before
-- it, or from a reconnect during shutdown) leaves it marked.
-- Returns {Redis now (ms), replica, JSON, replica, JSON, ...}; {Redis now} when leaving.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ at = now, held = 0, skew = 0, left = true }))
  return {now}
end
local skew = tonumber(ARGV[5])
local sent = math.min(now, tonumber(ARGV[3]) - skew)
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or not cjson.decode(current).left then
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ at = sent, held = tonumber(ARGV[2]), skew = skew }))
end
local reply = {now}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local entry = cjson.decode(entries[i + 1])
  if entry.at < now - tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], entries[i])
  else
    reply[#reply + 1] = entries[i]
    reply[#reply + 1] = entries[i + 1]
  end
end
return reply
