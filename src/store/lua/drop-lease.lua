-- KEYS (3): leases fences job
-- Ends the claim of a job whose record is gone or final, if its lease has run out. A record Redis
-- still holds as running (the caller read a copy of it, as it was before Redis went back) keeps
-- its claim: its token is in the record, which only a write may change (see claim_token), so
-- the reaper's takeover ends it.
-- ARGV[1] job id   Returns 1 when dropped.
local json = redis.call('GET', K.job)
if json and select(2, header(json)) == 'processing' then
  return 0
end
local lease = redis.call('ZSCORE', K.leases, ARGV[1])
if not lease or tonumber(lease) > now_ms() then
  return 0
end
end_claim(ARGV[1])
return 1
