-- KEYS (17): job events steps created queue tenants seq delayed webhooks leases fences notices status_*
-- Deletes a job: its record becomes a tombstone (kept as long as the record would have lived,
-- so a stale copy held by a replica can never bring it back), and every index, queue, lease,
-- retry, webhook and event entry of it goes.
-- ARGV[1] job id   Returns 1 when a record was deleted.
local id = ARGV[1]
local current = redis.call('GET', K.job)
local deleted = 0
if current then
  local version, status = header(current)
  if status ~= 'deleted' then
    local tenant = tenant_of(current)
    unqueue(id, tenant)
    if tenant ~= '' then
      redis.call('ZREM', owner_status_key(tenant, status), id)
      if status == 'processing' then
        unpark(tenant)
      end
    end
    redis.call('SET', K.job, '{"version":' .. (version + 1) .. ',"status":"deleted"}', 'KEEPTTL')
    notify(id, version + 1, 'deleted')
    deleted = 1
  end
end
for _, key in ipairs({K.created, K.queue, K.delayed, K.webhooks}) do
  redis.call('ZREM', key, id)
end
for _, status in ipairs(STATUSES) do
  redis.call('ZREM', status_key(status), id)
end
end_claim(id)
redis.call('DEL', K.events, K.steps)
return deleted
