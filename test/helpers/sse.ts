import { request } from 'node:http'

export interface SseEvent { id: string, event: string, data: any }

export interface SseRead {
  events: SseEvent[]
  comments: string[]
  status: number
  contentType: string
  /** The server ended the stream (true) or the reader stopped early (false). */
  ended: boolean
}

/**
 * Reads a text/event-stream over a real socket, parsing events as the spec says, until the
 * server ends it or `stopAfter` events arrived (then the reader hangs up, as a dropped client).
 */
export async function readEvents (url: string, options: { lastEventId?: string, stopAfter?: number, headers?: Record<string, string>, timeoutMs?: number, onEvent?: (event: SseEvent) => void } = {}): Promise<SseRead> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers }
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId
    const read: SseRead = { events: [], comments: [], status: 0, contentType: '', ended: false }
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no end of stream within ${options.timeoutMs ?? 10_000} ms; got ${read.events.length} events`)) }, options.timeoutMs ?? 10_000)
    const req = request(url, { headers }, (res) => {
      read.status = res.statusCode ?? 0
      read.contentType = String(res.headers['content-type'] ?? '')
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const fields: Record<string, string> = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) { read.comments.push(line.slice(1).trim()); continue }
            const colon = line.indexOf(':')
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '')
          }
          if (fields.data !== undefined) {
            const event = { id: fields.id ?? '', event: fields.event ?? 'message', data: JSON.parse(fields.data) }
            read.events.push(event)
            options.onEvent?.(event)
            if (options.stopAfter !== undefined && read.events.length >= options.stopAfter) {
              clearTimeout(timer)
              req.destroy()
              resolve(read)
              return
            }
          }
        }
      })
      res.on('end', () => {
        clearTimeout(timer)
        read.ended = true
        resolve(read)
      })
    })
    req.on('error', (err) => { clearTimeout(timer); if (read.status === 0) reject(err) })
    req.end()
  })
}
