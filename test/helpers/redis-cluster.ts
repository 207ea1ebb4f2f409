import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisServer } from './redis-server.js'

export interface ClusterNode { id: string, port: number, role: 'master' | 'replica', masterId: string | null, slots: string, failed: boolean }

/**
 * A real local Redis Cluster of the test's own: 3 masters and 3 replicas (`redis-server
 * --cluster-enabled yes` on free ports, joined by `redis-cli --cluster create`), so tests can
 * fail a master over, kill one, and see where keys landed.
 */
export class RedisCluster {
  readonly servers: RedisServer[]

  private constructor (servers: RedisServer[]) {
    this.servers = servers
  }

  static async start (masters = 3): Promise<RedisCluster> {
    const servers: RedisServer[] = []
    for (let i = 0; i < masters * 2; i++) {
      // A short node timeout: a killed master is failed over in about a second.
      servers.push(await RedisServer.start({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000', '--appendonly', 'yes'] }))
    }
    const cluster = new RedisCluster(servers)
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' })
    if (created.status !== 0) {
      await cluster.stop()
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
    }
    await cluster.waitHealthy()
    await cluster.waitReplicasSynced()
    return cluster
  }

  /** The URL the service is given: one node; the client discovers the rest. */
  get url (): string {
    return (this.servers[0] as RedisServer).url
  }

  /** The cluster as a live node sees it. */
  nodes (): ClusterNode[] {
    const live = this.servers.find((s) => s.running) as RedisServer
    const out = this.#cli(live.port, 'CLUSTER', 'NODES')
    return out.trim().split('\n').map((line) => {
      const [id = '', addr = '', flags = '', master = '-', , , , , ...slots] = line.split(' ')
      return {
        id,
        port: Number(addr.split(':')[1]?.split('@')[0]),
        role: flags.includes('master') ? 'master' as const : 'replica' as const,
        masterId: master === '-' ? null : master,
        slots: slots.join(' '),
        failed: flags.includes('fail')
      }
    })
  }

  masters (): ClusterNode[] {
    return this.nodes().filter((n) => n.role === 'master' && !n.failed)
  }

  server (port: number): RedisServer {
    return this.servers.find((s) => s.port === port) as RedisServer
  }

  /** The master serving `key`'s slot now. */
  masterOf (key: string): ClusterNode {
    const slot = Number(this.#cli(this.masters()[0]?.port as number, 'CLUSTER', 'KEYSLOT', key).trim())
    const master = this.masters().find((m) => m.slots.split(' ').some((range) => {
      const [from, to = from] = range.split('-').map(Number)
      return from !== undefined && slot >= from && slot <= (to as number)
    }))
    if (master === undefined) throw new Error(`no master serves slot ${slot}`)
    return master
  }

  /** A manual failover: `master`'s replica takes over, with no write lost (CLUSTER FAILOVER). */
  async failover (master: ClusterNode): Promise<ClusterNode> {
    const replica = this.nodes().find((n) => n.masterId === master.id && !n.failed)
    if (replica === undefined) throw new Error(`master ${master.port} has no live replica`)
    this.#cli(replica.port, 'CLUSTER', 'FAILOVER')
    for (let i = 0; i < 200; i++) {
      if (this.nodes().find((n) => n.id === replica.id)?.role === 'master') {
        await this.waitHealthy()
        await this.waitReplicasSynced()
        return replica
      }
      await sleep(50)
    }
    throw new Error(`replica ${replica.port} did not take over`)
  }

  /**
   * Every live replica has its master's data (master_link_status:up). A replica still syncing
   * (just created, or a master just demoted by a failover) cannot be promoted: a master killed
   * then leaves its slots without a master, and the whole cluster answers CLUSTERDOWN.
   */
  async waitReplicasSynced (): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const replicas = this.nodes().filter((n) => n.role === 'replica' && !n.failed)
      if (replicas.every((n) => /master_link_status:up/.test(this.#cli(n.port, 'INFO', 'replication')))) return
      await sleep(50)
    }
    throw new Error('the replicas did not finish syncing')
  }

  /** Keys each master holds (DBSIZE, or those matching `pattern`), by port. */
  dbsizes (pattern?: string): Record<number, number> {
    const count = (port: number): number => pattern === undefined
      ? Number(this.#cli(port, 'DBSIZE').trim())
      : this.#cli(port, '--scan', '--pattern', pattern).split('\n').filter((line) => line !== '').length
    return Object.fromEntries(this.masters().map((m) => [m.port, count(m.port)]))
  }

  async waitHealthy (): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const live = this.servers.filter((s) => s.running)
      if (live.every((s) => /cluster_state:ok/.test(this.#cli(s.port, 'CLUSTER', 'INFO')))) return
      await sleep(50)
    }
    throw new Error('the cluster did not become healthy')
  }

  async stop (): Promise<void> {
    for (const server of this.servers) await server.stop()
  }

  #cli (port: number, ...args: string[]): string {
    return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout
  }
}
