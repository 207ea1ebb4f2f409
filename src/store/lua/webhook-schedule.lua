-- KEYS (1): webhooks
-- The next delivery of a job's webhook, `delay` ms from now by Redis's clock.
-- ARGV[1] job id   ARGV[2] delay ms
redis.call('ZADD', K.webhooks, now_ms() + tonumber(ARGV[2]), ARGV[1])
return 1
