// Requests that do not arrive in time, and connections that say nothing, are closed (#25: bodies
// dripped a byte a second held their connections for as long as the client liked); event
// streams and long polls, whose requests arrived long ago, are not.
import { connect } from 'node:net'
import t from 'tap'
import { createJob, pollJob, startApp } from '../helpers/app.js'
import { StuckEngine } from '../helpers/engines.js'
import { readEvents } from '../helpers/sse.js'
import { sha256Hex } from '../../src/auth/keys.js'

interface Dripped {
  /** The server closed the connection (false: the guard gave up and closed it). */
  closedByServer: boolean
  afterMs: number
  /** Status lines of every response received. */
  statuses: number[]
  contentType: string
  body: string
}

const GIVE_UP_MS = 15_000

/** Sends a request's head, then its body one byte a second, over a raw socket, until the server closes it. */
async function dripBody (port: number, headers: Record<string, string> = {}): Promise<Dripped> {
  const body = JSON.stringify({ query: `a question sent very slowly ${'.'.repeat(60)}` })
  const head = Object.entries({ host: 'localhost', 'content-type': 'application/json', 'content-length': String(body.length), ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return await new Promise((resolve) => {
    const started = performance.now()
    let received = ''
    let sent = 0
    let gaveUp = false
    const socket = connect(port, '127.0.0.1', () => socket.write(`POST /v1/research HTTP/1.1\r\n${head}\r\n`))
    const drip = setInterval(() => { if (socket.writable && sent < body.length) socket.write(body[sent++] as string) }, 1000)
    const guard = setTimeout(() => { gaveUp = true; socket.destroy() }, GIVE_UP_MS)
    socket.on('error', () => {})
    socket.on('data', (chunk) => { received += chunk.toString() })
    socket.on('close', () => {
      clearInterval(drip)
      clearTimeout(guard)
      const [first = '', rest = ''] = received.split('\r\n\r\n')
      resolve({
        closedByServer: !gaveUp,
        afterMs: performance.now() - started,
        statuses: [...received.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])),
        contentType: /^content-type: ([^\r\n]+)/im.exec(first)?.[1] ?? '',
        body: rest
      })
    })
  })
}

/** Connects and sends nothing; resolves when the server closes the connection. */
async function sayNothing (port: number): Promise<{ closedByServer: boolean, afterMs: number, received: string }> {
  return await new Promise((resolve) => {
    const started = performance.now()
    let received = ''
    let gaveUp = false
    const socket = connect(port, '127.0.0.1')
    const guard = setTimeout(() => { gaveUp = true; socket.destroy() }, GIVE_UP_MS)
    socket.on('error', () => {})
    socket.on('data', (chunk) => { received += chunk.toString() })
    socket.on('close', () => { clearTimeout(guard); resolve({ closedByServer: !gaveUp, afterMs: performance.now() - started, received }) })
  })
}

async function listenPort (app: Awaited<ReturnType<typeof startApp>>): Promise<number> {
  return Number(new URL(await app.listen({ port: 0, host: '127.0.0.1' })).port)
}

t.test('10 bodies dripped a byte a second: each answered 408 request_timeout (JSON) and closed within the request timeout', async (t) => {
  const app = await startApp(t, { HTTP_REQUEST_TIMEOUT_MS: 1000 })
  const port = await listenPort(app)
  const dripped = await Promise.all(Array.from({ length: 10 }, async () => await dripBody(port)))
  t.same(dripped.map((d) => d.closedByServer), Array(10).fill(true), 'every connection closed by the server')
  t.same(dripped.map((d) => d.statuses), Array(10).fill([408]), 'each got one answer: 408')
  for (const d of dripped.filter((d) => d.statuses.length > 0)) {
    t.match(d.contentType, /^application\/problem\+json/)
    t.match(JSON.parse(d.body), { error: 'request_timeout', message: /in time/ })
  }
  const slowest = Math.max(...dripped.map((d) => d.afterMs))
  t.ok(slowest < 3000, `all closed within ${Math.round(slowest)} ms (timeout 1000 ms)`)
})

t.test('with API keys, a keyless request is refused at once; dripping its body on does not hold the connection', async (t) => {
  const app = await startApp(t, { HTTP_REQUEST_TIMEOUT_MS: 1000, API_KEYS: `alice:${sha256Hex('alice-key')}` })
  const port = await listenPort(app)
  const dripped = await Promise.all(Array.from({ length: 10 }, async () => await dripBody(port)))
  t.same(dripped.map((d) => d.closedByServer), Array(10).fill(true), 'every connection closed by the server')
  t.same(dripped.map((d) => d.statuses), Array(10).fill([401]), 'each got one answer, 401, and no second one after it')
  const slowest = Math.max(...dripped.map((d) => d.afterMs))
  t.ok(slowest < 3000, `all closed within ${Math.round(slowest)} ms (timeout 1000 ms)`)
})

t.test('a connection that sends nothing is closed after the connection timeout', async (t) => {
  // Below the 65 s the configuration accepts (long polls need it), to see it act in a test.
  const app = await startApp(t, { HTTP_CONNECTION_TIMEOUT_MS: 1000 })
  const port = await listenPort(app)
  const silent = await Promise.all(Array.from({ length: 10 }, async () => await sayNothing(port)))
  t.same(silent.map((s) => s.closedByServer), Array(10).fill(true), 'every connection closed by the server')
  t.same(silent.map((s) => s.received), Array(10).fill(''), 'without an answer (there was no request)')
  const slowest = Math.max(...silent.map((s) => s.afterMs))
  t.ok(slowest < 3000, `all closed within ${Math.round(slowest)} ms (timeout 1000 ms)`)
})

t.test('an event stream outlives both timeouts: its request arrived whole, and heartbeats keep its connection busy', async (t) => {
  // A 1 s connection timeout (below what the configuration accepts) with heartbeats 5 times as often.
  const app = await startApp(t, { HTTP_REQUEST_TIMEOUT_MS: 1000, HTTP_CONNECTION_TIMEOUT_MS: 1000, SSE_HEARTBEAT_MS: 200 }, { engine: new StuckEngine() })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const job = await createJob(app, { query: 'a long watch', depth: 'quick' })
  const reading = readEvents(`${base}/v1/jobs/${job.job_id as string}/events`)
  await new Promise((resolve) => setTimeout(resolve, 3500))
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.job_id as string}/cancel` })
  const read = await reading
  t.equal(read.status, 200)
  t.ok(read.ended, 'the server ended the stream')
  t.equal(read.events.at(-1)?.event, 'cancelled', 'after the cancel, 3.5 s in')
  t.ok(read.comments.filter((c) => c === 'heartbeat').length >= 10, `${read.comments.length} heartbeats`)
})

t.test('a long poll waits past the request timeout: its request arrived whole', async (t) => {
  const app = await startApp(t, { HTTP_REQUEST_TIMEOUT_MS: 1000 }, { engine: new StuckEngine() })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const job = await createJob(app, { query: 'a long poll', depth: 'quick' })
  await pollJob(app, job.job_id, (j) => j.status === 'processing' && j.current_step === 'Working')
  const first = await fetch(`${base}/v1/jobs/${job.job_id as string}`)
  const started = performance.now()
  const waited = await fetch(`${base}/v1/jobs/${job.job_id as string}?wait=3`, { headers: { 'if-none-match': first.headers.get('etag') ?? '' } })
  const ms = performance.now() - started
  t.equal(waited.status, 304, 'unchanged after the whole wait')
  t.ok(ms >= 2900, `answered after ${Math.round(ms)} ms`)
})
