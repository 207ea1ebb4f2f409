import { type Server, type Socket, createConnection, createServer } from 'node:net'

/**
 * A TCP proxy the test controls, in front of a real Redis. `stall()` keeps every connection
 * open (and accepts new ones) but stops moving bytes, as a stalled network path does: TCP holds
 * them, nothing answers. `resume()` lets the held bytes through, in order. Between a Redis and
 * its replica, a stall is replication lagging behind.
 */
export class TcpProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #stalled = false
  #targetPort: number
  port = 0

  private constructor (targetPort: number) {
    this.#targetPort = targetPort
    this.#server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: this.#targetPort })
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => this.#sockets.delete(socket))
      }
      client.pipe(upstream)
      upstream.pipe(client)
      if (this.#stalled) for (const socket of [client, upstream]) socket.pause()
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
  }

  static async start (targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort)
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    const address = proxy.#server.address()
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0
    return proxy
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  stall (): void {
    this.#stalled = true
    for (const socket of this.#sockets) socket.pause()
  }

  resume (): void {
    this.#stalled = false
    for (const socket of this.#sockets) socket.resume()
  }

  /**
   * Points the proxy at another server and drops every open connection, as a managed Redis's
   * failover does when its endpoint moves to the promoted replica: clients reconnect to it.
   */
  retarget (targetPort: number): void {
    this.#targetPort = targetPort
    for (const socket of this.#sockets) socket.destroy()
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
