// A research job that reads six pages and asks an LLM, cut off mid-run by a SIGTERM hand-back and,
// separately, by kill -9 of the process running it: the replica that finishes it does again no
// page fetch and no LLM request that the first one completed (checkpointed steps), counted by
// the local site's and the fake LLM's own request logs. Real server processes on one Redis.
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { type TestContext, waitFor } from '../helpers/app.js'
import { startFakeLlm } from '../helpers/fake-llm.js'
import { startLocalServer } from '../helpers/local-server.js'
import { RedisServer } from '../helpers/redis-server.js'
import { type Replica, startReplica } from '../helpers/replicas.js'

const PAGES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']
/** The page whose answer is held: the first replica is stopped while it waits for it. */
const HELD = '/p4.html'

/** Six pages on retries, each saying something of its own. */
function page (name: string): string {
  return `<!doctype html><html><head><title>Retries ${name}</title></head><body><main><h1>Retry backoff notes ${name}</h1>` +
    `<p>Retries with exponential backoff and jitter spread the load after an outage (note ${name}).</p>` +
    `<p>Jitter keeps clients that failed together from retrying together, so the service recovers (note ${name}).</p></main></body></html>`
}

interface Site { url: string, requests: string[], held: ServerResponse[], holding: boolean }

async function startSite (t: TestContext): Promise<Site> {
  const site: Site = { url: '', requests: [], held: [], holding: true }
  site.url = (await startLocalServer(t, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    site.requests.push(path)
    if (path === HELD && site.holding) {
      site.held.push(res)
      return
    }
    const name = /^\/(p\d)\.html$/.exec(path)?.[1]
    if (name === undefined) res.writeHead(404).end()
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(name))
  })).url
  return site
}

async function job (replica: Replica, id: string): Promise<any> {
  return await (await fetch(`${replica.url}/v1/jobs/${id}`)).json()
}

/** Requests the fake LLM got, by what they asked for. */
function llmCalls (requests: Array<{ body: any }>): Record<string, number> {
  const calls: Record<string, number> = {}
  for (const { body } of requests) {
    const system = String(body?.messages?.[0]?.content ?? '')
    const kind = system.startsWith('You plan research') ? 'plan' : system.startsWith('You check research') ? 'reflect' : 'report'
    calls[kind] = (calls[kind] ?? 0) + 1
  }
  return calls
}

for (const cut of ['SIGTERM', 'SIGKILL'] as const) {
  t.test(`a job cut off by ${cut === 'SIGTERM' ? 'a SIGTERM hand-back' : 'kill -9'} mid-run: the replica that finishes it fetches no page and asks the LLM nothing that the first one completed`, async (t) => {
    const redis = await RedisServer.start()
    t.teardown(() => redis.stop())
    const site = await startSite(t)
    t.teardown(() => { for (const res of site.held) res.destroy() })
    const llm = await startFakeLlm(t)
    const env = {
      REDIS_URL: redis.url,
      ALLOW_PRIVATE_URLS: 'true',
      LLM_BASE_URL: llm.baseUrl,
      LLM_MODEL: 'fake-model',
      // The steps alone are measured here: the shared cache would hide a page fetched twice.
      CACHE_ENABLED: 'false',
      // Short, so kill -9's takeover comes soon; not shorter: renewals alone keep a lease (progress
      // writes do not), and a replica starting under a loaded test run can stall for most of a second.
      JOB_LEASE_MS: '2000',
      JOB_RETRY_BASE_MS: '100',
      SHUTDOWN_TIMEOUT_MS: '2000'
    }
    const first = await startReplica(t, 'first', env)
    const created = await fetch(`${first.url}/v1/research`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'How should retries use backoff and jitter?', depth: 'standard', sources: ['urls'], urls: PAGES.map((p) => `${site.url}/${p}.html`), max_sources: 6 })
    })
    t.equal(created.status, 202)
    const { job_id: id } = await created.json() as { job_id: string }
    await waitFor('the first replica waiting for the fourth page', () => site.held.length === 1, 30_000)
    t.same(site.requests, ['/p1.html', '/p2.html', '/p3.html', HELD], 'three pages read, the fourth asked for')
    t.same(llmCalls(llm.requests), { plan: 1 }, 'the sub-questions were planned')

    first.process.kill(cut)
    await first.exited
    site.holding = false
    for (const res of site.held.splice(0)) res.destroy()
    if (cut === 'SIGTERM') t.match(first.log.join(''), /job handed back at shutdown/, 'the job was handed back')

    const second = await startReplica(t, 'second', env)
    await waitFor('the job completed on the second replica', async () => (await job(second, id)).status === 'completed', 60_000)
    const done = await job(second, id)
    const counts = Object.fromEntries(PAGES.map((p) => [p, site.requests.filter((path) => path === `/${p}.html`).length]))
    t.same(counts, { p1: 1, p2: 1, p3: 1, p4: 2, p5: 1, p6: 1 }, 'pages read before the cut are not fetched again; only the one cut off is')
    t.equal(llmCalls(llm.requests).plan, 1, 'the planning request is not sent again')
    t.same(done.attempt_history.map((a: any) => [a.worker, a.outcome]), [['first', cut === 'SIGTERM' ? 'handed_back' : 'lease_expired'], ['second', 'completed']])
    t.equal(done.result.usage.steps_reused, 4, 'the plan and three pages came from the first attempt')
    t.equal(done.result.usage.pages_fetched, 6, 'what the job fetched, across both attempts, once each')
    t.equal(done.result.sources.length > 0, true, 'the report cites the pages')
    t.notOk(await redis.client().then(async (admin) => {
      const kept = await admin.keys('*:steps')
      await admin.close()
      return kept.length > 0
    }), 'the steps are dropped once the job is done')
  })
}
