-- KEYS (14): job_prefix created queue tenants seq delayed leases fences notices status_*
-- Claims up to `limit` jobs to run (see claim_jobs in lib/job.lua): only one caller ever gets a
-- given claim. With `start`, each claimed job's attempt also begins here (processing, its
-- worker, its running history entry, its status event), as the runner's start write would: one
-- step per job instead of two.
-- ARGV[1] options: lease_ms, limit, promote (most due retries to queue per call), floor (the
--   highest write counter the caller saw), start (or absent): worker, step, now, expires (JSON
--   texts), max_attempts, ttl (s), max_events
-- Returns {claims, counter}: claims as claim_jobs returns them ({id, fence, record JSON, started
-- (1, or absent)}, oldest first), or false when Redis went back behind `floor`.
local claims = claim_jobs(now_ms(), cjson.decode(ARGV[1]))
return {claims, seq_now()}
