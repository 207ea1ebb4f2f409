// isoTime gives what Date#toISOString gives, and a job's way through the service (its create, the
// claim that starts it, its progress writes and the write that ends it) takes its timestamps from
// it (issue #29: V8 formats Date#toISOString through printf, about 430 ns a call, and a job with 3
// progress writes took 25 of them).
import t from 'tap'
import { isoNow, isoTime } from '../src/iso-time.js'
import { createJob, json, onRedis, startApp, waitFor } from './helpers/app.js'
import { RedisServer } from './helpers/redis-server.js'

const dateIso = (ms: number): string => new Date(ms).toISOString()

t.test('isoTime formats times of years 1970 to 9999 as Date#toISOString does', async (t) => {
  const day = 86_400_000
  const edges = [
    0, 1, 999, 1000, day - 1, day, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2000, 2, 1), Date.UTC(2100, 1, 28, 12),
    Date.UTC(2100, 2, 1), Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2025, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999)
  ]
  for (const ms of edges) t.equal(isoTime(ms), dateIso(ms), `at ${ms}`)
  // Each day's first and last millisecond to 2400, the days around the end of every February to
  // 9999, and random times (any day; and times of one day).
  const checked: number[] = []
  for (let days = 0; days < 157_000; days++) checked.push(days * day, days * day + day - 1)
  for (let year = 1970; year <= 9999; year++) checked.push(Date.UTC(year, 1, 28, 23, 59, 59, 999), Date.UTC(year, 2, 1), Date.UTC(year, 2, 1) - 1)
  for (let i = 0; i < 20_000; i++) {
    checked.push(i % 2 === 0 ? Math.floor(Math.random() * 253_402_300_800_000) : Date.UTC(2026, 11, 7) + Math.floor(Math.random() * day))
  }
  t.equal(checked.find((ms) => isoTime(ms) !== dateIso(ms)), undefined, `no time of ${checked.length} formatted otherwise`)
  t.equal(isoTime(1_765_000_000_123.9), dateIso(1_765_000_000_123.9), 'a fraction of a millisecond is dropped, as Date drops it')
})

t.test('isoTime leaves times outside its years, and times that are not one, to Date', async (t) => {
  for (const ms of [-1, -62_198_755_200_000, 253_402_300_800_000, 8.64e15]) t.equal(isoTime(ms), dateIso(ms), `at ${ms}`)
  t.throws(() => isoTime(Number.NaN), RangeError)
  t.throws(() => isoTime(8.64e15 + 1), RangeError)
  const before = Date.now()
  const now = Date.parse(isoNow())
  t.ok(now >= before && now <= Date.now(), 'isoNow is the current time')
})

t.test('a job created, started, written 3 times and ended on Redis formats no timestamp through Date#toISOString', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const app = await startApp(t, { REDIS_URL: redis.url, RESEARCH_ENGINE: 'noop', NOOP_PROGRESS_WRITES: 3 })
  // On Redis before the job: its claim, progress and final writes go through the Redis store's scripts.
  await onRedis(app)
  const formatted: string[] = []
  const own = Object.getOwnPropertyDescriptor(Date.prototype, 'toISOString') as PropertyDescriptor
  const format = own.value as (this: Date) => string
  const counting = {
    ...own,
    value: function (this: Date) {
      formatted.push(new Error('formatted here').stack?.split('\n')[2]?.trim() ?? '')
      return Reflect.apply(format, this, [])
    }
  }
  // Counted for this test only, and put back at its end.
  const formatWith = (descriptor: PropertyDescriptor): void => {
    // eslint-disable-next-line no-extend-native -- replaces the method Date already has, for a count
    Object.defineProperty(Date.prototype, 'toISOString', descriptor)
  }
  t.teardown(() => { formatWith(own) })
  formatWith(counting)
  const job = await createJob(app, { query: 'timestamps of a job', depth: 'quick' })
  await waitFor('completed', async () => json(await app.inject({ url: `/v1/jobs/${job.job_id as string}` })).status === 'completed')
  const done = json(await app.inject({ url: `/v1/jobs/${job.job_id as string}` }))
  formatWith(own)
  t.same(formatted, [], 'no call to Date#toISOString')
  t.match(done, { status: 'completed', progress: 100, started_at: String, completed_at: String })
  t.ok(Date.parse(done.completed_at) >= Date.parse(done.started_at), 'its times still read in order')
})
