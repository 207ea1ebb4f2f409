/** One Server-Sent Event as the spec defines it (fields `id`, `event`, `data`). */
export interface ServerSentEvent { id: string | null, event: string, data: string }

/**
 * Parses a text/event-stream body into events, as browsers do: blank lines end events,
 * `:` lines are comments, several `data:` lines join with newlines.
 */
export async function * parseEventStream (body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder()
  let buffer = ''
  let fields: { id: string | null, event: string, data: string[] } = { id: null, event: 'message', data: [] }
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline
    while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
      if (line === '') {
        if (fields.data.length > 0) yield { id: fields.id, event: fields.event, data: fields.data.join('\n') }
        fields = { id: null, event: 'message', data: [] }
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const name = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (name === 'data') fields.data.push(value)
      else if (name === 'event') fields.event = value
      else if (name === 'id') fields.id = value
    }
  }
}
