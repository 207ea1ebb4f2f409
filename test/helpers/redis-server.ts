import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type RedisClientType, createClient } from 'redis'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

export interface RedisServerOptions {
  /** Turn on AOF persistence (appendonly yes, appendfsync everysec). */
  appendOnly?: boolean
  /** Serve TLS only, with a self-signed certificate made for this server. */
  tls?: boolean
  /**
   * Snapshots on (a save point, as most managed Redis have): `snapshot()` writes dump.rdb and a
   * restart loads it; `breakPersistence()` makes snapshots fail, so Redis refuses writes (MISCONF).
   */
  snapshots?: boolean
  /** A replica of the Redis on this port (asynchronous replication, as Redis always does). */
  replicaOf?: number
  extraArgs?: string[]
}

/**
 * A real redis-server of the test's own: its own free port and temp dir, so tests can kill it,
 * restart it on the same port and never touch any other Redis on the machine.
 */
export class RedisServer {
  readonly port: number
  readonly dir: string
  readonly #options: RedisServerOptions
  #process: ChildProcess | null = null

  private constructor (port: number, options: RedisServerOptions) {
    this.port = port
    this.dir = mkdtempSync(join(tmpdir(), 'drapi-redis-'))
    this.#options = options
  }

  static async start (options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options)
    await server.start()
    return server
  }

  get url (): string {
    return `${this.#options.tls === true ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`
  }

  get running (): boolean {
    return this.#process !== null
  }

  async start (): Promise<void> {
    if (this.#process !== null) return
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', this.#options.snapshots === true ? '3600 1' : '', '--appendonly', this.#options.appendOnly === true ? 'yes' : 'no',
      '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction',
      ...(this.#options.tls === true ? this.#tlsArgs() : []),
      ...(this.#options.snapshots === true ? ['--enable-protected-configs', 'yes'] : []),
      ...(this.#options.replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(this.#options.replicaOf)]),
      ...(this.#options.extraArgs ?? [])
    ]
    const child = spawn('redis-server', args, { stdio: 'ignore' })
    this.#process = child
    child.once('exit', () => { if (this.#process === child) this.#process = null })
    await this.#waitUntilReady()
  }

  /** SIGSTOP: connections stay open but nothing answers (a half-open Redis). */
  pause (): void {
    this.#process?.kill('SIGSTOP')
  }

  resume (): void {
    this.#process?.kill('SIGCONT')
  }

  /** SIGKILL: the server vanishes mid-flight, as in a crash. */
  async kill (): Promise<void> {
    await this.#signal('SIGKILL')
  }

  /** SIGTERM: Redis shuts down cleanly (flushing its AOF), as a managed restart does. */
  async shutdown (): Promise<void> {
    await this.#signal('SIGTERM')
  }

  async #signal (signal: NodeJS.Signals): Promise<void> {
    const child = this.#process
    if (child === null) return
    this.#process = null
    child.kill('SIGCONT')
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }

  async restart (): Promise<void> {
    await this.kill()
    await this.start()
  }

  async stop (): Promise<void> {
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** Writes dump.rdb now (SAVE): a restart after a crash comes back with the data as of this moment. */
  async snapshot (): Promise<void> {
    await this.#admin(async (client) => { await client.sendCommand(['SAVE']) })
  }

  /**
   * Makes snapshots fail as a full or broken disk does: the snapshot dir is deleted under Redis,
   * and a background save fails, after which Redis refuses every write with MISCONF (needs
   * `snapshots`). `restorePersistence()` points it back at a working dir and saves again.
   */
  async breakPersistence (): Promise<void> {
    const gone = mkdtempSync(join(tmpdir(), 'drapi-redis-gone-'))
    await this.#admin(async (client) => {
      await client.configSet('dir', gone)
      rmSync(gone, { recursive: true, force: true })
      await client.sendCommand(['BGSAVE'])
      await this.#untilPersistence(client, 'err')
    })
  }

  async restorePersistence (): Promise<void> {
    await this.#admin(async (client) => {
      await client.configSet('dir', this.dir)
      await client.sendCommand(['BGSAVE', 'SCHEDULE'])
      await this.#untilPersistence(client, 'ok')
    })
  }

  /** Becomes a master (REPLICAOF NO ONE), as Sentinel or a managed service promotes a replica. */
  async promote (): Promise<void> {
    await this.#admin(async (client) => { await client.sendCommand(['REPLICAOF', 'NO', 'ONE']) })
  }

  /** The replication offset this server has reached (a master's: what it sent; a replica's: what it applied). */
  async replicationOffset (): Promise<number> {
    return await this.#admin(async (client) => {
      const info = await client.sendCommand(['INFO', 'replication']) as string
      return Number(/^(?:master_repl_offset|slave_repl_offset):(\d+)/m.exec(info)?.[1] ?? 0)
    })
  }

  /** Waits until this replica has applied everything `master` had sent when called (its link up). */
  async caughtUpWith (master: RedisServer): Promise<void> {
    const target = await master.replicationOffset()
    for (let i = 0; i < 400; i++) {
      const info = await this.#admin(async (client) => await client.sendCommand(['INFO', 'replication']) as string)
      if (info.includes('master_link_status:up') && await this.replicationOffset() >= target) return
      await sleep(25)
    }
    throw new Error(`redis-server on port ${this.port} did not catch up with its master`)
  }

  async #untilPersistence (client: RedisClientType, status: 'ok' | 'err'): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const info = await client.sendCommand(['INFO', 'persistence']) as string
      if (info.includes(`rdb_last_bgsave_status:${status}`) && info.includes('rdb_bgsave_in_progress:0')) return
      await sleep(25)
    }
    throw new Error(`redis-server on port ${this.port}: snapshots did not become ${status}`)
  }

  async #admin<T> (use: (client: RedisClientType) => Promise<T>): Promise<T> {
    const client = await this.client()
    try {
      return await use(client)
    } finally {
      await client.close()
    }
  }

  /** A separate client for assertions on what is really in Redis. */
  async client (): Promise<RedisClientType> {
    const client: RedisClientType = createClient({ url: this.url, socket: this.#options.tls === true ? { tls: true, rejectUnauthorized: false } : {} })
    client.on('error', () => {})
    await client.connect()
    return client
  }

  #tlsArgs (): string[] {
    const key = join(this.dir, 'key.pem')
    const cert = join(this.dir, 'cert.pem')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
    if (made.status !== 0) throw new Error('openssl could not make a test certificate')
    return ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no']
  }

  async #waitUntilReady (): Promise<void> {
    for (let i = 0; i < 200; i++) {
      try {
        const client = await this.client()
        await client.ping()
        await client.close()
        return
      } catch {
        await sleep(25)
      }
    }
    throw new Error(`redis-server on port ${this.port} did not start`)
  }
}
