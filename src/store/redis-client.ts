import { createClient, type RedisClientType } from 'redis'

export type RedisClient = RedisClientType

export interface RedisClientOptions {
  url: string
  rejectUnauthorized: boolean
  /** Socket connect timeout; also the first reconnect delay's scale. */
  connectTimeoutMs?: number
  /** Longest wait between reconnect attempts (default 500 ms: a reconnect attempt is cheap, an outage is not). */
  maxReconnectDelayMs?: number
  onError?: (err: Error) => void
}

/**
 * One client per process. It never blocks start-up (`connect()` is not awaited by callers),
 * never queues commands while offline (they fail at once and the fallback answers), and
 * reconnects forever with capped, jittered backoff.
 */
export function createRedisClient (options: RedisClientOptions): RedisClient {
  const maxDelay = options.maxReconnectDelayMs ?? 500
  const tls = options.url.startsWith('rediss://')
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    // Every call already has its own deadline (RedisJobStore, REDIS_TIMEOUT_MS); node-redis's
    // default 5 s command timeout would add an AbortSignal and a timer per command.
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 2000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
      ...(tls ? { tls: true as const, rejectUnauthorized: options.rejectUnauthorized } : {})
    }
  }) as unknown as RedisClient
  // Without a listener, node-redis re-throws socket errors and the process dies.
  client.on('error', (err: Error) => options.onError?.(err))
  return client
}

/** Starts connecting in the background; failures are reported through the client's error event. */
export function connectInBackground (client: RedisClient): void {
  client.connect().catch(() => { /* reported by the 'error' listener; reconnects on its own */ })
}
