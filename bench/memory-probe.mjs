// Heap per record held by the in-memory store: run with --expose-gc. Prints JSON.
// `RECORD` is a real job record (a finished no-op job); each stored copy gets its own id and query.
// The built modules (the bench measures dist/), typed from their sources: a clean clone type-checks
// before anything is built.
const fromDist = (/** @type {string} */ path) => new URL(`../dist/${path}`, import.meta.url).href
const { MemoryJobStore } = /** @type {typeof import('../src/store/memory.ts')} */ (await import(fromDist('store/memory.js')))
const { newJob } = /** @type {typeof import('../src/jobs/records.ts')} */ (await import(fromDist('jobs/records.js')))

const COUNT = Number(process.env.RECORDS ?? 10_000)
const template = process.env.RECORD ?? JSON.stringify(newJob({ query: 'benchmark question', depth: 'standard' }))
const store = new MemoryJobStore({ ttlSeconds: 86400, maxJobs: COUNT * 2 })
globalThis.gc()
const before = process.memoryUsage().heapUsed
for (let i = 0; i < COUNT; i++) {
  const job = JSON.parse(template)
  await store.put({ ...job, job_id: newJob({ query: '', depth: 'quick' }).job_id, query: `${job.query} ${i}`, version: 0 }, 0)
}
globalThis.gc()
const after = process.memoryUsage().heapUsed
process.stdout.write(JSON.stringify({ records: store.size, bytesPerRecord: Math.round((after - before) / COUNT), jsonBytes: template.length }) + '\n')
