-- KEYS (2): leases fences
-- Ends the claim of a job whose record is gone or final, if its lease has run out.
-- ARGV[1] job id   Returns 1 when dropped.
local lease = redis.call('ZSCORE', K.leases, ARGV[1])
if not lease or tonumber(lease) > now_ms() then
  return 0
end
end_claim(ARGV[1])
return 1
