import { EventEmitter } from 'node:events'
import { createClient, createCluster, type RedisClusterType } from 'redis'

/**
 * What the store needs of a Redis connection: a single server's client (node-redis's own) or a
 * Redis Cluster (ClusterClient below, which routes each command by its first key).
 */
export interface RedisClient {
  readonly isReady: boolean
  sendCommand (args: string[]): Promise<unknown>
  on (event: 'ready' | 'error' | 'end' | 'reconnecting', listener: (...args: any[]) => void): unknown
  off (event: 'ready' | 'error' | 'end' | 'reconnecting', listener: (...args: any[]) => void): unknown
  connect (): Promise<unknown>
  close (): Promise<unknown>
  destroy (): unknown
  duplicate (): RedisClient
  subscribe (channel: string, listener: (message: string) => void): Promise<unknown>
  unsubscribe (channel: string, listener: (message: string) => void): Promise<unknown>
}

export interface RedisClientOptions {
  url: string
  rejectUnauthorized: boolean
  /** `url` is one node of a Redis Cluster: the others are discovered from it. */
  cluster?: boolean
  /** Cluster only: the key keyless commands (PING, INFO) are routed by, so they reach the shard's master. */
  homeKey?: string
  /** Socket connect timeout; also the first reconnect delay's scale. */
  connectTimeoutMs?: number
  /** Longest wait between reconnect attempts (default 500 ms: a reconnect attempt is cheap, an outage is not). */
  maxReconnectDelayMs?: number
  onError?: (err: Error) => void
}

/**
 * The process's main client (its notice subscriber and its runner's connections are duplicates
 * of it, with the same options). It never blocks start-up (`connect()` is not awaited by callers),
 * never queues commands while offline (they fail at once and the fallback answers), and
 * reconnects forever with capped, jittered backoff.
 */
export function createRedisClient (options: RedisClientOptions): RedisClient {
  const client = options.cluster === true
    ? new ClusterClient(options)
    : createClient({ url: options.url, ...clientDefaults(options) }) as unknown as RedisClient
  // Without a listener, node-redis re-throws socket errors and the process dies.
  client.on('error', (err: Error) => options.onError?.(err))
  return client
}

/** A command for the Redis that holds `key` (a Cluster's shard; a single server's only one). */
export function sendNear (client: RedisClient, key: string | undefined, args: string[]): Promise<unknown> {
  return client instanceof ClusterClient ? client.sendNear(key, args) : client.sendCommand(args)
}

/** Starts connecting in the background; failures are reported through the client's error event. */
export function connectInBackground (client: RedisClient): void {
  client.connect().catch(() => { /* reported by the 'error' listener; reconnects on its own */ })
}

function clientDefaults (options: RedisClientOptions): object {
  const maxDelay = options.maxReconnectDelayMs ?? 500
  return {
    disableOfflineQueue: true,
    // Every call already has its own deadline (RedisJobStore, REDIS_TIMEOUT_MS); node-redis's
    // default 5 s command timeout would add an AbortSignal and a timer per command.
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 2000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
      ...(options.url.startsWith('rediss://') ? { tls: true as const, rejectUnauthorized: options.rejectUnauthorized } : {})
    }
  }
}

/**
 * A Redis Cluster behind the single-server interface: commands go to the master of their first
 * key's slot (node-redis follows MOVED and refreshes the topology after a failover), keyless
 * ones to the master of `homeKey`. Discovery is retried until a node answers, as a single
 * client's reconnects are. `failingNodes` lists the nodes whose connection is down now.
 */
export class ClusterClient extends EventEmitter implements RedisClient {
  readonly #cluster: RedisClusterType
  readonly #options: RedisClientOptions
  readonly #failing = new Set<string>()
  #closed = false

  constructor (options: RedisClientOptions, cluster?: RedisClusterType) {
    super()
    this.#options = options
    const url = new URL(options.url)
    const defaults = clientDefaults(options)
    this.#cluster = cluster ?? createCluster({
      rootNodes: [{ url: `${url.protocol}//${url.host}` }],
      // Node connections take credentials and TLS from here, not from the root node's URL.
      defaults: {
        ...defaults,
        ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
        ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) })
      }
    }) as unknown as RedisClusterType
    this.#cluster.on('error', (err: Error) => this.emit('error', err))
    this.#cluster.on('connect', () => this.emit('ready'))
    this.#cluster.on('disconnect', () => this.emit('end'))
    this.#cluster.on('node-error', (err: Error, node: NodeInfo) => {
      this.#failing.add(address(node))
      this.emit('error', new Error(`cluster node ${address(node)}: ${err.message}`))
    })
    this.#cluster.on('node-reconnecting', (node: NodeInfo) => {
      this.#failing.add(address(node))
      this.emit('reconnecting')
    })
    // A node back after a failure is a reconnect, as a single client's 'ready' is: the store
    // checks the epoch and hands over what it holds, the notice subscriber reads again.
    this.#cluster.on('node-ready', (node: NodeInfo) => {
      if (this.#failing.delete(address(node))) this.emit('ready')
    })
  }

  get isReady (): boolean {
    return this.#cluster.isReady
  }

  /** Nodes whose connection failed and has not come back (host:port). */
  get failingNodes (): string[] {
    return [...this.#failing].sort()
  }

  async sendCommand (args: string[]): Promise<unknown> {
    return await this.#cluster.sendCommand(firstKey(args) ?? this.#options.homeKey, false, args)
  }

  /** A command for the master of `key`'s slot, whatever its own arguments are. */
  async sendNear (key: string | undefined, args: string[]): Promise<unknown> {
    return await this.#cluster.sendCommand(key ?? this.#options.homeKey, false, args)
  }

  async connect (): Promise<unknown> {
    const maxDelay = this.#options.maxReconnectDelayMs ?? 500
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#cluster.connect()
      } catch (err) {
        if (this.#closed) throw err
        this.emit('error', err)
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay)))
        if (this.#closed) throw err
      }
    }
  }

  async close (): Promise<unknown> {
    this.#closed = true
    return this.#cluster.isOpen ? await this.#cluster.close() : undefined
  }

  destroy (): void {
    this.#closed = true
    if (this.#cluster.isOpen) this.#cluster.destroy()
  }

  duplicate (): RedisClient {
    const copy = new ClusterClient(this.#options, this.#cluster.duplicate() as unknown as RedisClusterType)
    copy.on('error', () => { /* the main client reports Redis errors */ })
    return copy
  }

  /** A sharded subscription (SSUBSCRIBE): on the master of the channel's slot, followed across failovers. */
  async subscribe (channel: string, listener: (message: string) => void): Promise<unknown> {
    return await this.#cluster.sSubscribe(channel, listener)
  }

  async unsubscribe (channel: string, listener: (message: string) => void): Promise<unknown> {
    return await this.#cluster.sUnsubscribe(channel, listener)
  }
}

interface NodeInfo { host: string, port: number }

function address (node: NodeInfo): string {
  return `${node.host}:${node.port}`
}

/** The first key of a command, as Redis Cluster routes it (null for keyless commands). */
export function firstKey (args: string[]): string | undefined {
  const command = (args[0] ?? '').toUpperCase()
  if (command === 'EVALSHA' || command === 'EVAL' || command === 'FCALL') return Number(args[2]) > 0 ? args[3] : undefined
  if (['PING', 'INFO', 'CONFIG', 'CLUSTER', 'SCRIPT', 'TIME', 'PUBLISH', 'SUBSCRIBE'].includes(command)) return undefined
  return args[1]
}
