import { fileURLToPath } from 'node:url'
import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import { TENANT_QUOTAS_PATTERN } from './jobs/quotas.js'
import { mistakesAmong } from './setting-mistakes.js'

/**
 * Every environment variable the service reads. The descriptions are the documentation:
 * a test checks that each one is listed in docs/configuration.md with its default.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port to listen on (Railway sets it).' }),
  HOST: Type.String({ minLength: 1, default: '::', description: 'Address to bind. `::` listens on IPv6 and IPv4 (Railway private networking needs IPv6); falls back to `0.0.0.0` where the host has no IPv6.' }),
  STRICT_CONFIG: Type.Boolean({ default: false, description: '`true`: refuse to start when a variable looks like a setting but is not one (`REDIS_URI` for `REDIS_URL`, a name in the service\'s namespaces such as `CACHE_TTL`), naming each. `false`: start, and name each in a WARN.' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level.' }),
  API_KEYS: Type.String({ default: '', pattern: '^([A-Za-z0-9_.-]{1,64}:[0-9a-fA-F]{64})?(,\\s*[A-Za-z0-9_.-]{1,64}:[0-9a-fA-F]{64})*$', description: 'Client keys as comma-separated `name:sha256hex` pairs (the SHA-256 of the key, never the key). The name is the tenant that owns the jobs created with the key. Empty (and no ADMIN_KEYS): the API is open.' }),
  ADMIN_KEYS: Type.String({ default: '', pattern: '^([A-Za-z0-9_.-]{1,64}:[0-9a-fA-F]{64})?(,\\s*[A-Za-z0-9_.-]{1,64}:[0-9a-fA-F]{64})*$', description: 'Keys that may also call the admin routes (`/v1/stats`, `/metrics`, `/api/v4/admin/cleanup-jobs`), same format.' }),
  HEALTH_DETAILS: Type.Enum(['admin', 'public'], { default: 'admin', description: 'Who sees `/health` in full (Redis and its errors, queue depth and running jobs across tenants, the providers and model) once keys are configured. `admin`: admin keys; everyone else gets `status` and `role` only. `public`: everyone. With no keys configured the API is open and so is the detail.' }),
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true, description: '`false` turns every rate limit off (benchmarks, load tests).' }),
  RATE_LIMIT_CREATE_MAX: Type.Integer({ minimum: 1, maximum: 1000000, default: 10, description: 'Jobs a client (API key, or IP when the API is open) may create per window, across replicas.' }),
  RATE_LIMIT_POLL_MAX: Type.Integer({ minimum: 1, maximum: 10000000, default: 600, description: 'Reads, lists, cancels and deletes of jobs a client may make per window, across replicas.' }),
  RATE_LIMIT_AUTH_FAILURES_MAX: Type.Integer({ minimum: 1, maximum: 1000000, default: 20, description: 'Wrong API keys a client address may send per window, across replicas; past it, every request with a key from that address answers 429 until the window ends.' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, maximum: 86400000, default: 60000, description: 'Length of the rate-limit window (a fixed window per client and budget).' }),
  TRUST_PROXY: Type.String({ default: '', pattern: '^(|true|false|\\d{1,2}|[0-9A-Fa-f.:/]+(\\s*,\\s*[0-9A-Fa-f.:/]+)*)$', description: 'Whose `X-Forwarded-For` to believe for the client address (the per-IP rate-limit key): empty trusts no proxy; a number of proxy hops (`1` on Railway, whose edge proxy is one hop); comma-separated proxy addresses or CIDRs; `true` believes anyone (only behind a proxy that overwrites the header).' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 10485760, default: 65536, description: 'Largest request body accepted; larger ones answer 413.' }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 900000, default: 30000, description: 'Time a request has to arrive whole (request line, headers and body) from its first byte; past it the answer is 408 `request_timeout` and the connection is closed. Event streams and long polls are not cut by it: their requests arrive at once. Checked every quarter of it (at least every 5 s), so a request is cut at most that late.' }),
  HTTP_CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 65000, maximum: 3600000, default: 90000, description: 'A connection that sends and receives nothing for this long while a request is open, or before its first request, is closed without an answer. At least 65 s, and at least 5 s more than SSE_HEARTBEAT_MS: long polls stay silent up to 60 s, event streams between heartbeats.' }),
  CORS_ORIGINS: Type.String({ default: '', description: 'Origins allowed to call the API from a browser: comma-separated (`https://a.example,https://b.example`) or `*`. Empty: no cross-origin access.' }),
  REDIS_URL: Type.String({ default: '', pattern: '^(rediss?://.+)?$', description: 'redis:// or rediss:// (TLS) URL. Empty: run on the in-memory store only.' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'dr:{0}:', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]*(\\{[A-Za-z0-9_.:-]+\\})?[A-Za-z0-9_.:-]*$', description: 'Put before every Redis key and channel the service uses, so deployments sharing a Redis never see each other\'s jobs, limits or events. Letters, digits, `_.:-` and at most one hash tag (`{...}`); keep the hash tag on a Redis Cluster, so every key lands in one slot.' }),
  REDIS_CLUSTER: Type.Boolean({ default: false, description: '`true`: REDIS_URL is one node of a Redis Cluster; the others are discovered from it, and commands go to the master of their slot (failovers are followed). REDIS_KEY_PREFIX must then hold a hash tag.' }),
  REDIS_SHARDS: Type.Integer({ minimum: 1, maximum: 256, default: 1, description: 'Spread jobs over this many hash tags (`{0}`..`{N-1}` in place of REDIS_KEY_PREFIX\'s hash tag): on a Redis Cluster the shards land on different masters, so the queue is not bound to one slot. A job\'s shard comes from its id; workers claim round the shards. Keep it once jobs exist: changing it hides the jobs of shards that move.' }),
  REDIS_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 60000, default: 500, description: 'How long Redis may stay silent before a call fails over to the in-memory fallback. A call queued behind a burst that Redis is still answering waits (no call waits more than 8 times this): load is not an outage.' }),
  REDIS_RUNNER_CONNECTION: Type.Boolean({ default: true, description: '`true`: a process that runs jobs gives its runner\'s calls (claims, lease renewals, progress writes and the record writes made under a claim) connections of their own to Redis (REDIS_RUNNER_CONNECTIONS), so this process and Redis can work at once instead of taking turns on one connection; while one is down, and after a call on it timed out until a PING on it (every 30 s) is answered, the others (or the main connection) carry its calls. `false`: one connection (and one for notices) per process, for a Redis with few client slots. Not used on a Redis Cluster.' }),
  REDIS_RUNNER_CONNECTIONS: Type.Integer({ minimum: 0, maximum: 8, default: 0, description: 'With REDIS_RUNNER_CONNECTION: how many connections the runner\'s calls take in turn; 0 (the default): 2 on a ROLE=worker process, 1 on one that also serves the API. node-redis writes a connection\'s calls in one batch per turn of the event loop, and the runner\'s next calls wait for the replies to its last: on one connection this process and Redis take turns; on two, Redis runs one connection\'s batch while this process reads the other\'s replies. A worker drained jobs with progress writes a fifth to a third faster with two (without, within 7% either way); a process that also serves the API gained on one machine and lost on another (docs/scaling.md#connections).' }),
  REDIS_BREAKER_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 1000, description: 'After a Redis failure, how long calls skip Redis before one probe tries it again.' }),
  REDIS_READ_WAIT_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 2000, description: 'While Redis is unreachable, how long a read of a job this process holds no final copy of waits for Redis to come back before answering 503 (so a Redis restart costs pollers latency, not errors).' }),
  REDIS_ADMIT_MEMORY_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 80, description: 'With Redis\'s `maxmemory` set: creates answer 503 `store_full` once the memory in use, plus REDIS_JOB_RESERVE_BYTES for each unfinished job, passes this percent of `maxmemory`, so the jobs already accepted have room to finish. Without `maxmemory` there is no limit.' }),
  REDIS_JOB_RESERVE_BYTES: Type.Integer({ minimum: 0, maximum: 104857600, default: 65536, description: 'Room kept in Redis for each unfinished job to finish in (its final record, report and events are larger than the created record): see REDIS_ADMIT_MEMORY_PERCENT.' }),
  JOB_VISIBILITY_GRACE_MS: Type.Integer({ minimum: 0, maximum: 86400000, default: 300000, description: 'With Redis: for this long after a job id was issued, a job no store holds may still exist on a replica cut off from Redis: it answers 503 `job_not_visible_yet` instead of 404 while a replica heard from within this grace has gone silent or holds jobs Redis lacks (see REPLICA_HEARTBEAT_MS); when every replica accounts for it, 404.' }),
  REPLICA_HEARTBEAT_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 1000, description: 'With Redis: how often each replica tells the others, through Redis, that it is connected and how many jobs it holds that Redis does not have yet. An id issued within JOB_VISIBILITY_GRACE_MS that no store holds answers 404 once every replica heard from within that grace has been heard from since the id was issued, holding nothing of its own; while one has gone silent (3 heartbeats), 503 `job_not_visible_yet`.' }),
  REDIS_TLS_REJECT_UNAUTHORIZED: Type.Boolean({ default: true, description: 'For rediss:// URLs: `false` accepts self-signed certificates (some managed Redis hosts need it).' }),
  JOB_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 2592000, default: 86400, description: 'How long a job record lives after its last change (Redis SETEX and the in-memory store); a running job\'s progress writes leave it as its attempt\'s start set it, so it must be longer than JOB_TIMEOUT_MS.' }),
  MEMORY_MAX_JOBS: Type.Integer({ minimum: 10, maximum: 1000000, default: 10000, description: 'Most records the in-memory store holds; past it, expired then oldest finished records are evicted.' }),
  ROLE: Type.Enum(['all', 'api', 'worker'], { default: 'all', description: 'What this process does. `all`: serves the API and runs jobs. `api`: serves the API and runs no jobs (workers take them from Redis; a create wakes them). `worker`: runs jobs, the lease reaper and webhook deliveries, and serves only `/health` and `/metrics`. `api` and `worker` need REDIS_URL: that is where they meet.' }),
  RUNNER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 4, description: 'Jobs run at once by this process.' }),
  PROGRESS_MIN_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 0, description: 'At most one progress write per job in this many ms: reports that come sooner are held and the latest is written when the interval ends (never lost, only delayed). 0 writes every report.' }),
  JOB_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 86400000, default: 300000, description: 'Deadline for one job run; past it the job fails with a timeout error.' }),
  JOB_LEASE_MS: Type.Integer({ minimum: 100, maximum: 3600000, default: 30000, description: 'Lease a worker holds on a running job; renewed every third of it. A job whose worker dies is taken over once its lease runs out.' }),
  JOB_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'Attempts a job gets (failures, or workers lost) before it fails for good. Errors the engine marks permanent fail at once.' }),
  JOB_RETRY_BASE_MS: Type.Integer({ minimum: 0, maximum: 3600000, default: 1000, description: 'Backoff before the first retry; doubles per attempt, with jitter.' }),
  JOB_RETRY_MAX_MS: Type.Integer({ minimum: 0, maximum: 86400000, default: 60000, description: 'Longest backoff between attempts.' }),
  WORKER_ID: Type.String({ default: '', pattern: '^[A-Za-z0-9_.:-]{0,100}$', description: 'This process\'s name in leases, attempt histories and /v1/stats. Empty: host name, pid and a random suffix.' }),
  JOB_EVENTS_MAX: Type.Integer({ minimum: 10, maximum: 100000, default: 500, description: 'Events kept per running job for `GET /v1/jobs/{id}/events` (a Redis list per job with the record\'s TTL; in process memory without Redis). Older ones are dropped first; a finished job keeps its final event alone.' }),
  TENANT_MAX_QUEUED: Type.Integer({ minimum: 0, maximum: 100000000, default: 1000, description: 'Jobs one tenant (API key) may have queued at once, across replicas; past it, creates answer 429 `quota_exceeded`. 0: no limit. The open API (no keys) has no per-tenant quota (its clients share one tenant for fair share and are limited per address by the rate limits).' }),
  TENANT_MAX_RUNNING: Type.Integer({ minimum: 0, maximum: 100000, default: 0, description: 'Jobs one tenant (API key) may run at once, across replicas (per shard with REDIS_SHARDS above 1); past it, its other jobs wait while other tenants\' jobs run. 0: no limit (fair share alone decides). The open API has no such limit.' }),
  TENANT_QUOTAS: Type.String({ default: '', pattern: TENANT_QUOTAS_PATTERN, description: 'Quotas of single tenants, in place of TENANT_MAX_QUEUED and TENANT_MAX_RUNNING: comma-separated `name:queued=N:running=M`, either or both (`alice:queued=5000:running=8,bob:running=1`; 0: no limit).' }),
  SSE_HEARTBEAT_MS: Type.Integer({ minimum: 100, maximum: 300000, default: 15000, description: 'How often an idle event stream sends a comment line, so proxies keep it open.' }),
  SSE_POLL_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 1000, description: 'Event streams wait for notices of changes (no polling); while this process\'s notice subscriber is reconnecting to Redis, they read again this often.' }),
  SSE_MAX_STREAMS: Type.Integer({ minimum: 1, maximum: 1000000, default: 10000, description: 'Open event streams this process serves at most; past it, 429.' }),
  SSE_MAX_STREAMS_PER_CLIENT: Type.Integer({ minimum: 1, maximum: 100000, default: 20, description: 'Open event streams one client (API key, or address when the API is open) may hold on one process; past it, 429.' }),
  WEBHOOK_SECRET: Type.String({ default: '', pattern: '^(whsec_[A-Za-z0-9+/]{24,}={0,2})?$', description: 'Signing secret for webhooks, Standard Webhooks style: `whsec_` and at least 18 random bytes in base64 (`echo whsec_$(openssl rand -base64 32)`). Empty: `webhook_url` is refused.' }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120000, default: 10000, description: 'Deadline of one webhook delivery.' }),
  WEBHOOK_RETRY_BASE_MS: Type.Integer({ minimum: 0, maximum: 3600000, default: 5000, description: 'Backoff before the second delivery attempt; doubles per attempt, with jitter.' }),
  WEBHOOK_RETRY_MAX_MS: Type.Integer({ minimum: 0, maximum: 86400000, default: 3600000, description: 'Longest wait between delivery attempts.' }),
  WEBHOOK_RETRY_WINDOW_MS: Type.Integer({ minimum: 1000, maximum: 604800000, default: 86400000, description: 'How long after the first attempt deliveries are retried before the webhook is marked failed.' }),
  WEBHOOK_POLL_MS: Type.Integer({ minimum: 10, maximum: 60000, default: 500, description: 'How often each replica looks for due webhook deliveries.' }),
  MEMORY_SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, maximum: 600000, default: 1500, description: 'Without REDIS_URL: on SIGTERM/SIGINT, how long running jobs get to finish (the default keeps the whole shutdown within Railway\'s 3 s window) before the process exits (their records live only in this process, so a job not finished is lost). Each job lost, running or queued, is logged by id. Give the platform at least this plus SHUTDOWN_TIMEOUT_MS between SIGTERM and SIGKILL (Railway: RAILWAY_DEPLOYMENT_DRAINING_SECONDS).' }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 2000, description: 'On SIGTERM/SIGINT, time allowed to hand running jobs back to the queue before the process exits.' }),
  RESEARCH_ENGINE: Type.Enum(['research', 'corpus', 'noop'], { default: 'research', description: '`research`: the research engine (corpus, URLs, web search, LLM as configured; `corpus` is its former name). `noop`: completes every job at once with an empty report, to benchmark the service itself.' }),
  NOOP_PROGRESS_WRITES: Type.Integer({ minimum: 0, maximum: 100, default: 1, description: 'With RESEARCH_ENGINE=noop: progress updates each job writes before it completes (the benchmark measures 0 and 3).' }),
  RESEARCH_STEP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 0, description: 'Pause before each step of the research engine, to watch progress in demos or load tests; 0 runs at full speed.' }),
  RESEARCH_CORPUS_DIR: Type.String({ default: '', description: 'Folder of .md/.txt documents the research engine searches. Empty: the corpus shipped in `corpus/`.' }),
  ALLOW_PRIVATE_URLS: Type.Boolean({ default: false, description: '`true` lets jobs read URLs that resolve to private, loopback or link-local addresses (the SSRF guard is off). Only for trusted clients on a private network.' }),
  PAGE_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 52428800, default: 2097152, description: 'Largest page a job reads; larger ones are skipped and listed in the report\'s `unread`.' }),
  PAGE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300000, default: 15000, description: 'Deadline for reading one page, redirects included.' }),
  READER_THREADS: Type.Integer({ minimum: 0, maximum: 256, default: 0, description: 'Worker threads that parse HTML pages, off the main thread, so a page costly to parse never stalls /health, lease renewals or other jobs. 0: one per CPU the process may use (`os.availableParallelism()`).' }),
  READER_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 300000, default: 10000, description: 'Hard limit on parsing one HTML page; past it the parsing thread is stopped and the page is listed in the report\'s `unread` ("took too long to read"). The job goes on.' }),
  READER_MAX_DEPTH: Type.Integer({ minimum: 8, maximum: 10000, default: 256, description: 'Deepest element nesting of an HTML page that is parsed; a deeper page is refused before parsing (its elements counted in one pass) and listed in `unread`.' }),
  READER_MAX_ELEMENTS: Type.Integer({ minimum: 100, maximum: 10000000, default: 50000, description: 'Most elements of an HTML page that is parsed; a page with more is refused before parsing and listed in `unread`.' }),
  STEP_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 52428800, default: 1048576, description: 'Largest result of one checkpointed research step (a page read, a search, an LLM answer) kept for a later attempt of the job; a larger one is not kept, and is done again if the job is taken over or retried. Steps live beside the job (Redis, same TTL) and are dropped when it ends.' }),
  STEPS_MEMORY_MAX_BYTES: Type.Integer({ minimum: 0, maximum: 17179869184, default: 67108864, description: 'Most bytes of step results this process keeps for jobs that live only here (no Redis, or created during an outage); past it, the oldest job\'s are dropped (they are done again if needed).' }),
  CACHE_ENABLED: Type.Boolean({ default: true, description: '`false`: no job reads or fills the shared cache of pages and LLM answers (checkpointed steps still work).' }),
  CACHE_SCOPE: Type.Enum(['tenant', 'shared'], { default: 'tenant', description: 'Who shares cached pages and LLM answers. `tenant`: each tenant (API key name) its own, so no tenant ever gets an answer another one paid for or saw. `shared`: every tenant of this deployment.' }),
  CACHE_PAGE_TTL_S: Type.Integer({ minimum: 1, maximum: 2592000, default: 21600, description: 'How long a page read stays in the shared cache.' }),
  CACHE_LLM_TTL_S: Type.Integer({ minimum: 1, maximum: 2592000, default: 3600, description: 'How long an LLM answer stays in the shared cache (keyed by the exact request: model, messages, max tokens).' }),
  CACHE_MAX_ENTRIES: Type.Integer({ minimum: 1, maximum: 10000000, default: 5000, description: 'Most entries of the shared cache in Redis (spread over REDIS_SHARDS); past it, the oldest written go first.' }),
  CACHE_MAX_ENTRY_BYTES: Type.Integer({ minimum: 1024, maximum: 52428800, default: 262144, description: 'Largest page or LLM answer the shared cache keeps (as JSON); larger ones are not cached.' }),
  CACHE_MEMORY_MAX_BYTES: Type.Integer({ minimum: 0, maximum: 17179869184, default: 67108864, description: 'Most bytes of the cache this process keeps when there is no Redis or it cannot be reached; least recently used out first.' }),
  SEARXNG_URL: Type.String({ default: '', pattern: '^(https?://.+)?$', description: 'Base URL of a SearXNG instance with JSON output enabled: enables the `web` source (first choice).' }),
  TAVILY_API_KEY: Type.String({ default: '', description: 'Tavily API key: enables the `web` source when SEARXNG_URL is empty.' }),
  BRAVE_API_KEY: Type.String({ default: '', description: 'Brave Search API key: enables the `web` source when neither SearXNG nor Tavily is set.' }),
  LLM_MODEL: Type.String({ default: '', description: 'Chat model name (`gpt-4o-mini`, `llama3.1`...). Set: the LLM plans sub-questions and writes reports. Empty: extractive reports, no LLM.' }),
  LLM_BASE_URL: Type.String({ default: 'https://api.openai.com/v1', pattern: '^https?://.+', description: 'OpenAI-compatible API base: OpenAI, `https://openrouter.ai/api/v1`, Ollama `http://localhost:11434/v1`, vLLM.' }),
  LLM_API_KEY: Type.String({ default: '', description: 'Bearer key for LLM_BASE_URL (empty for servers without keys, such as Ollama).' }),
  LLM_MAX_TOKENS_PER_JOB: Type.Integer({ minimum: 500, maximum: 10000000, default: 50000, description: 'Token budget (input + output) of one job; calls that would pass it are not made and the report falls back to extractive.' }),
  LLM_PRICE_INPUT_PER_MTOK: Type.String({ default: '', pattern: '^(\\d+(\\.\\d+)?)?$', description: 'USD per million input tokens, for `usage.cost_usd`. Empty: unknown (cost_usd is null when the LLM was used).' }),
  LLM_PRICE_OUTPUT_PER_MTOK: Type.String({ default: '', pattern: '^(\\d+(\\.\\d+)?)?$', description: 'USD per million output tokens, for `usage.cost_usd`.' }),
  SEARCH_PRICE_PER_QUERY: Type.String({ default: '', pattern: '^(\\d+(\\.\\d+)?)?$', description: 'USD per Tavily or Brave query, for `usage.cost_usd` (SearXNG counts as free). Empty: unknown.' }),
  PROVIDER_RETRIES: Type.Integer({ minimum: 0, maximum: 10, default: 3, description: 'Retries of a search or LLM call answered 429 or 5xx (or timed out); after them the job fails with the provider\'s error.' }),
  PROVIDER_RETRY_BASE_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 500, description: 'Backoff before the first provider retry; doubles per retry, with jitter, up to 8 s (Retry-After is honoured).' }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.String({ default: '', pattern: '^(https?://.+)?$', description: 'OTLP collector base URL (`http://otel-collector:4318`): set, traces are exported (traces only: metrics stay on `/metrics`); empty, tracing is off and costs nothing. The OpenTelemetry SDK reads the other standard `OTEL_*` variables itself: `OTEL_SERVICE_NAME` (default `deep-research-api`), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` default, `http/json`, `grpc`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`. See docs/operations.md.' }),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.String({ default: '', pattern: '^(https?://.+)?$', description: 'Full URL traces are sent to (`.../v1/traces`), instead of OTEL_EXPORTER_OTLP_ENDPOINT\'s; set alone, it also turns tracing on.' }),
  OTEL_SDK_DISABLED: Type.Boolean({ default: false, description: '`true`: no tracing even with an OTLP endpoint set.' })
})

export type Config = Static<typeof ConfigSchema>

export const SHIPPED_CORPUS_DIR = fileURLToPath(new URL('../corpus/', import.meta.url))

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads and validates configuration; throws a ConfigError naming the offending variable. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const data: Record<string, string> = {}
  let config: Config
  for (const key in ConfigSchema.properties) {
    const value = env[key]
    if (value !== undefined && value !== '') data[key] = value.trim()
  }
  try {
    config = envSchema<Config>({ schema: ConfigSchema as object, data })
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${describe(err, data)}`)
  }
  const mistakes = settingMistakes(env)
  if (config.STRICT_CONFIG && mistakes.length > 0) throw new ConfigError(`Invalid configuration (STRICT_CONFIG=true): ${mistakes.join(' ')}`)
  if (config.ROLE !== 'all' && config.REDIS_URL === '') {
    throw new ConfigError(`Invalid configuration: ROLE=${config.ROLE} needs REDIS_URL (api and worker processes share their jobs through Redis)`)
  }
  if (config.SSE_HEARTBEAT_MS + 5000 > config.HTTP_CONNECTION_TIMEOUT_MS) {
    throw new ConfigError(`Invalid configuration: SSE_HEARTBEAT_MS=${config.SSE_HEARTBEAT_MS} must be at least 5 s shorter than HTTP_CONNECTION_TIMEOUT_MS=${config.HTTP_CONNECTION_TIMEOUT_MS}, or idle event streams are closed between heartbeats`)
  }
  // A running job's record is written whole when its attempt starts and ends; progress writes
  // patch it without renewing its TTL (lua/progress.lua), so it must outlive one run.
  if (config.JOB_TTL_SECONDS * 1000 <= config.JOB_TIMEOUT_MS) {
    throw new ConfigError(`Invalid configuration: JOB_TTL_SECONDS=${config.JOB_TTL_SECONDS} must be longer than JOB_TIMEOUT_MS=${config.JOB_TIMEOUT_MS} (in seconds: ${config.JOB_TIMEOUT_MS / 1000}), or a running job's record could expire during its run`)
  }
  const hashTagged = /\{[^}]+\}/.test(config.REDIS_KEY_PREFIX)
  if (config.REDIS_SHARDS > 1 && !hashTagged) {
    throw new ConfigError(`Invalid configuration: REDIS_SHARDS=${config.REDIS_SHARDS} needs a hash tag in REDIS_KEY_PREFIX (such as dr:{0}:) to number the shards by; got ${config.REDIS_KEY_PREFIX}`)
  }
  if (config.REDIS_CLUSTER && !hashTagged) {
    throw new ConfigError(`Invalid configuration: REDIS_CLUSTER=true needs a hash tag in REDIS_KEY_PREFIX (such as dr:{0}:), so each script's keys share one slot; got ${config.REDIS_KEY_PREFIX}`)
  }
  return { ...config, RESEARCH_CORPUS_DIR: config.RESEARCH_CORPUS_DIR || SHIPPED_CORPUS_DIR }
}

/**
 * The connections a process that runs jobs gives its runner's calls (REDIS_RUNNER_CONNECTIONS,
 * 0 choosing by ROLE): a worker alone on the queue overlaps its turns with Redis's on a second.
 */
export function runnerConnections (config: Pick<Config, 'REDIS_RUNNER_CONNECTIONS' | 'ROLE'>): number {
  if (config.REDIS_RUNNER_CONNECTIONS > 0) return config.REDIS_RUNNER_CONNECTIONS
  return config.ROLE === 'worker' ? 2 : 1
}

/** Variables that look like settings but are not one, a sentence each naming the setting meant (see setting-mistakes.ts). */
export function settingMistakes (env: NodeJS.ProcessEnv): string[] {
  return mistakesAmong(env, Object.keys(ConfigSchema.properties))
}

function describe (err: unknown, data: Record<string, string>): string {
  const message = err instanceof Error ? err.message : String(err)
  // env-schema reports "env/PORT must be <= 65535"; make the variable name stand out, and name
  // the values a setting allows (from its schema) beside the one it was given.
  return message
    .replace(/env\/(\w+) must be equal to one of the allowed values/g, (_all, name: string) => {
      const allowed = (ConfigSchema.properties as Record<string, { enum?: string[] }>)[name]?.enum ?? []
      return `${name} is not one of the allowed values: ${allowed.join(', ')} (got ${JSON.stringify(data[name])})`
    })
    .replace(/env\/(\w+)/g, '$1')
    .replace(/((?:API|ADMIN)_KEYS) must match pattern "[^"]*"/g, '$1 must be comma-separated name:sha256hex pairs (the SHA-256 of each key, never the key)')
}

/** How long each research step waits with `--demo`, so a person can watch a job's progress. */
export const DEMO_STEP_DELAY_MS = '400'

/**
 * `npm start -- --demo` (or `node dist/server.js --demo`): the environment with each research
 * step slowed down, unless RESEARCH_STEP_DELAY_MS says otherwise. Unknown arguments are errors.
 */
export function environmentFor (argv: string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const unknown = argv.filter((arg) => arg !== '--demo')
  if (unknown.length > 0) throw new ConfigError(`Unknown argument ${unknown[0] as string}: the server takes only --demo; everything else is set by environment variables (see docs/configuration.md)`)
  if (argv.length === 0 || (env.RESEARCH_STEP_DELAY_MS ?? '') !== '') return env
  return { ...env, RESEARCH_STEP_DELAY_MS: DEMO_STEP_DELAY_MS }
}

/** A config for tests and tools: defaults plus overrides, no process.env. */
export function defaultConfig (overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), ...overrides }
}

/** TRUST_PROXY as Fastify's `trustProxy` option (a number of hops: the first `n` addresses of the chain, nearest first). */
export function trustProxyOption (value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === '' || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return value.split(',').map((part) => part.trim())
}

/**
 * redis://user:secret@host -> redis://user:***@host, for logs and health output. The user info
 * ends at the last @ before the path, so a password holding @ or : is hidden whole.
 */
export function redactUrl (url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i.exec(url)
  if (match === null) return url
  const [whole, scheme, userinfo] = match as unknown as [string, string, string]
  const colon = userinfo.indexOf(':')
  return `${scheme}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}@${url.slice(whole.length)}`
}
