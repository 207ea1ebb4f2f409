// The bench's push rows: what idle event streams cost Redis, how fast an event written on one
// replica reaches a stream on another, how many requests a long-polling client makes, and what a
// conditional poll of a finished job costs Redis.
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

const json = async (url, init) => await (await fetch(url, init)).json()
const create = async (base, query) => await json(`${base}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, depth: 'quick' }) })

/**
 * Opens an event stream and calls `onEvent(event, arrivedAtMs, openedAtMs)` for each event; returns a close function.
 * @param {string} url
 * @param {(event: { id: string, type: string | undefined }, arrivedAtMs: number, openedAtMs: number) => void} [onEvent]
 */
function openStream (url, onEvent = () => {}) {
  let buffer = ''
  let openedAt = 0
  const req = request(url, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
    openedAt = Date.now()
    res.setEncoding('utf8')
    res.on('data', (chunk) => {
      const now = Date.now()
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const id = /^id: (\S+)$/m.exec(block)?.[1]
        if (id !== undefined) onEvent({ id, type: /^event: (\S+)$/m.exec(block)?.[1] }, now, openedAt)
      }
    })
    res.on('error', () => {})
  })
  req.on('error', () => {})
  req.end()
  return () => req.destroy()
}

/**
 * 2,000 streams on jobs that do not change, for `seconds`: Redis commands per second with them
 * open, minus the same replica's upkeep (claims, reaper, epoch check) with none open.
 */
export async function idleStreams ({ base, commandCalls, streams = 2000, seconds = 20 }) {
  const ids = []
  for (let i = 0; i < streams; i += 50) {
    ids.push(...(await Promise.all(Array.from({ length: Math.min(50, streams - i) }, async (_v, k) => (await create(base, `idle stream ${i + k}`)).job_id))))
  }
  const total = (calls) => Object.entries(calls).filter(([c]) => c !== 'info' && c !== 'config').reduce((sum, [, n]) => sum + n, 0)
  let before = total(commandCalls())
  await sleep(seconds * 1000)
  const upkeepPerSecond = (total(commandCalls()) - before) / seconds
  const closers = ids.map((id) => openStream(`${base}/v1/jobs/${id}/events`))
  // Opening reads each job and its events once; what is measured is what they cost afterwards.
  await sleep(3000)
  before = total(commandCalls())
  await sleep(seconds * 1000)
  const withStreamsPerSecond = (total(commandCalls()) - before) / seconds
  for (const close of closers) close()
  return { streams, seconds, upkeepPerSecond, withStreamsPerSecond, causedPerSecond: Math.max(0, withStreamsPerSecond - upkeepPerSecond) }
}

/**
 * Jobs created on replica A, watched from replica B: each event's delay is its arrival time on
 * the watcher minus the time Redis gave it (the stream entry id), on one machine's clock.
 */
export async function crossReplicaDelivery ({ writer, watcher, jobs = 100 }) {
  const delays = []
  const ended = []
  for (let i = 0; i < jobs; i++) {
    const job = await create(writer, `delivery ${i}`)
    ended.push(new Promise((resolve) => {
      const close = openStream(`${watcher}/v1/jobs/${job.job_id}/events`, (event, arrived, openedAt) => {
        const written = Number(event.id.split('-')[0])
        // Events written before the stream opened are history it catches up on, not deliveries.
        if (written >= openedAt) delays.push(arrived - written)
        if (['completed', 'failed', 'cancelled'].includes(event.type)) { close(); resolve() }
      })
    }))
  }
  await Promise.all(ended)
  delays.sort((a, b) => a - b)
  const at = (q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]
  return { events: delays.length, p50: at(0.5), p99: at(0.99), max: delays.at(-1) }
}

/** One client following a paced job by conditional long polls: requests made against changes seen. */
export async function longPollFollow ({ base }) {
  const job = await create(base, 'followed by long polls')
  let etag = null
  let requests = 0
  const seen = new Set()
  for (;;) {
    const res = await fetch(`${base}/v1/jobs/${job.job_id}?wait=30`, { headers: etag === null ? {} : { 'if-none-match': etag } })
    requests++
    etag = res.headers.get('etag')
    if (res.status === 304) continue
    const record = await res.json()
    seen.add(`${record.status}|${record.progress}|${record.current_step}`)
    if (['completed', 'failed', 'cancelled'].includes(record.status)) break
  }
  return { requests, changes: seen.size }
}

/** 1,000 conditional polls of a finished job: answers 304, and Redis round trips made for them. */
export async function conditionalFinalPolls ({ base, jobId, roundTrips }) {
  const first = await fetch(`${base}/v1/jobs/${jobId}`)
  const etag = first.headers.get('etag')
  await first.arrayBuffer()
  const before = await roundTrips()
  let notModified = 0
  for (let i = 0; i < 1000; i++) {
    const res = await fetch(`${base}/v1/jobs/${jobId}`, { headers: { 'if-none-match': etag } })
    if (res.status === 304) notModified++
    await res.arrayBuffer()
  }
  const after = await roundTrips()
  const reads = (after.MGET ?? 0) - (before.MGET ?? 0) + (after.GET ?? 0) - (before.GET ?? 0)
  return { polls: 1000, notModified, redisReads: reads }
}
