import { type RequestListener, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from './app.js'

/**
 * A real HTTP server on a free 127.0.0.1 port, closed after the test with every connection
 * (requests left hanging included), for the test sites, APIs and receivers the tests start.
 */
export async function startLocalServer (t: TestContext, listener: RequestListener): Promise<{ url: string, port: number }> {
  const server = createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${port}`, port }
}
