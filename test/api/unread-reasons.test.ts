// What a client learns when a page it listed cannot be read: why, in plain words, and nothing
// about the server's network (the address a name resolved to, the resolver's raw error). The
// operator finds the detail in the server log.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { startTestSite } from '../helpers/test-site.js'

const QUESTION = 'How should failed background jobs be retried with backoff and jitter?'
const LEAKS = /127\.0\.0\.1|::1|resolves to|getaddrinfo|ENOTFOUND|ECONNREFUSED|EAI_/

/** Creates a job over a real socket and polls it until it ends, as a client would. */
async function research (base: string, body: object): Promise<any> {
  const created = await fetch(`${base}/v1/research`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: QUESTION, depth: 'quick', ...body }) })
  if (created.status !== 202) throw new Error(`create answered ${created.status}: ${await created.text()}`)
  const { job_id: id } = await created.json() as { job_id: string }
  for (let i = 0; i < 500; i++) {
    const job = await (await fetch(`${base}/v1/jobs/${id}`)).json() as any
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${id} did not end`)
}

t.test('result.unread and the job\'s error say "refused" or "could not resolve", without the address or the resolver\'s error; the log keeps the detail', async (t) => {
  const site = await startTestSite(t)
  const port = new URL(site.url).port
  const lines: string[] = []
  const app = await startApp(t, {}, { logger: { level: 'debug', stream: { write: (line: string) => lines.push(line) } } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const urls = [`http://localhost:${port}/jitter.html`, 'http://no-such-host.invalid/jitter.html']

  const job = await research(base, { sources: ['corpus', 'urls'], urls })
  t.equal(job.status, 'completed', job.error ?? '')
  t.same(job.result.unread, [
    { url: urls[0], reason: 'refused: private, loopback or link-local address (set ALLOW_PRIVATE_URLS=true to allow it)' },
    { url: urls[1], reason: 'could not resolve the host name' }
  ])
  for (const { reason } of job.result.unread) t.notMatch(reason, LEAKS)

  const failed = await research(base, { sources: ['urls'], urls })
  t.equal(failed.status, 'failed')
  t.match(failed.error, /^No source could be read: /)
  t.notMatch(failed.error, LEAKS)
  t.same(site.requests, [], 'no request reached the site')

  const log = lines.join('')
  t.match(log, /"address":"127\.0\.0\.1"|"address":"::1"/, 'the log names the address refused')
  t.match(log, /ENOTFOUND/, 'the log keeps the resolver\'s error')
})
