import t from 'tap'
import { StreamSlots } from '../../src/jobs/stream-slots.js'

t.test('places are capped per client and in all; each is given back once, however often released', async (t) => {
  const slots = new StreamSlots(3, 2)
  const a1 = slots.take('a')
  const a2 = slots.take('a')
  t.ok(a1 !== null && a2 !== null)
  t.equal(slots.take('a'), null, 'a is at its cap')
  const b1 = slots.take('b')
  t.ok(b1 !== null)
  t.equal(slots.take('c'), null, 'the process is at its cap')
  a1?.release()
  a1?.release()
  t.equal(slots.open, 2, 'a second release gives nothing back')
  t.equal(slots.heldBy('a'), 1)
  t.ok(slots.take('c') !== null, 'the place a gave back is free for anyone')
  a2?.release()
  b1?.release()
  t.equal(slots.heldBy('a'), 0)
  t.equal(slots.heldBy('b'), 0)
})
