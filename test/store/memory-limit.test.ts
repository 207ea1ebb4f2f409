// MemoryLimitReading on its own: when a create may leave the memory admission out, with a
// reader the test answers by hand.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryLimitReading } from '../../src/store/memory-limit.js'

function manualReader (): { read: () => Promise<number>, asked: number, answer: (maxBytes: number) => void, fail: () => void } {
  const pending: Array<{ resolve: (n: number) => void, reject: (err: Error) => void }> = []
  const reader = {
    asked: 0,
    read: async () => await new Promise<number>((resolve, reject) => { reader.asked++; pending.push({ resolve, reject }) }),
    answer: (maxBytes: number) => pending.shift()?.resolve(maxBytes),
    fail: () => pending.shift()?.reject(new Error('Redis did not answer'))
  }
  return reader
}

t.test('creates are checked until Redis says it has no maxmemory, then not, for the time trusted; one reading at a time', async (t) => {
  const reader = manualReader()
  const reading = new MemoryLimitReading(200, reader.read)
  t.equal(reading.createNeedsCheck(), true, 'nothing read yet')
  t.equal(reading.createNeedsCheck(), true)
  t.equal(reader.asked, 1, 'one reading in flight, not one per create')
  reader.answer(0)
  await sleep(0)
  t.equal(reading.createNeedsCheck(), false, 'no maxmemory: no check')
  await sleep(250)
  t.equal(reading.createNeedsCheck(), true, 'the reading is too old: checked, and asked again')
  t.equal(reader.asked, 2)
  reader.answer(1_000_000)
  await sleep(0)
  t.equal(reading.createNeedsCheck(), true, 'a maxmemory: every create is checked')
})

t.test('a reading that fails leaves creates checked; an older reading never replaces a newer one', async (t) => {
  const reader = manualReader()
  const reading = new MemoryLimitReading(10_000, reader.read)
  reading.createNeedsCheck()
  reader.fail()
  await sleep(0)
  t.equal(reading.createNeedsCheck(), true, 'unknown: checked')
  const now = performance.now()
  reading.noted(1_000_000, now)
  reading.noted(0, now - 5)
  t.equal(reading.createNeedsCheck(), true, 'the later reading (a maxmemory) stands')
})

t.test('after forget (a reconnect, maybe to another Redis) creates are checked, and a reading asked before it is not trusted', async (t) => {
  const reader = manualReader()
  const reading = new MemoryLimitReading(10_000, reader.read)
  reading.noted(0, performance.now())
  t.equal(reading.createNeedsCheck(), false)
  const before = performance.now()
  await sleep(2)
  reading.forget()
  t.equal(reading.createNeedsCheck(), true, 'checked at once')
  reading.noted(0, before)
  t.equal(reading.createNeedsCheck(), true, 'a reading from before the reconnect says nothing of this Redis')
  reading.noted(0, performance.now())
  t.equal(reading.createNeedsCheck(), false, 'one asked after it does')
})
