// The notice subscriber listens to the running records' channel (their start and progress, most
// of a job's writes) only while a reader of its process waits, so a process nobody watches
// through is not sent every progress write; a reader that starts waiting before that
// subscription took effect reads again once it has. A real Redis, its PUBLISH replies counting
// the subscribers a notice reached.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { RedisKeys } from '../../src/store/keys.js'
import { NoticeSubscriber } from '../../src/store/notice-subscriber.js'
import { JobNotices } from '../../src/store/notices.js'
import { createRedisClient } from '../../src/store/redis-client.js'
import { waitFor } from '../helpers/app.js'
import { recordingLogger } from '../helpers/logger.js'
import { RedisServer } from '../helpers/redis-server.js'

const KEYS = new RedisKeys()
const channels = { all: [KEYS.notices], running: [KEYS.runningNotices] }
const server = await RedisServer.start()
t.teardown(() => server.stop())
const admin = await server.client()
t.teardown(() => admin.close())

/** A process's notices and its subscriber, stopped when `t` ends (a PUBLISH counts every subscriber alive). */
function subscriber (t: Test, lingerMs: number): { notices: JobNotices, subscriber: NoticeSubscriber } {
  const notices = new JobNotices(false)
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  const subscriber = new NoticeSubscriber(client, channels, notices, { lingerMs })
  t.teardown(() => subscriber.destroy())
  return { notices, subscriber }
}

t.test('the running records\' channel is listened to only while a reader waits, and for the linger after the last', async (t) => {
  const { notices, subscriber: listening } = subscriber(t, 400)
  await waitFor('subscribed', () => notices.live)
  t.equal(await admin.publish(KEYS.notices, 'a 1 pending'), 1, 'every other notice reaches the process')
  t.equal(await admin.publish(KEYS.runningNotices, 'a 2 processing'), 0, 'a running record\'s reaches no one while nobody waits')

  const first = notices.watch('a', 2)
  const second = notices.watch('b', 0)
  await waitFor('listening to running records', () => listening.listeningToRunning)
  t.equal(await first.next(1000), 'resync', 'the reader reads again once the subscription took effect')
  t.equal(await admin.publish(KEYS.runningNotices, 'a 3 processing'), 1, 'while a reader waits, it reaches the process')
  t.equal(await first.next(1000), 'changed', 'and the reader')
  first.close()
  t.equal(await admin.publish(KEYS.runningNotices, 'b 1 processing'), 1, 'so does the next, while another reader waits')
  second.close()
  await sleep(100)
  t.equal(await admin.publish(KEYS.runningNotices, 'b 2 processing'), 1, 'and for the linger after the last one stopped')
  await waitFor('stopped listening', async () => await admin.publish(KEYS.runningNotices, 'b 3 processing') === 0, 3000)
  t.notOk(listening.listeningToRunning)
  t.equal(await admin.publish(KEYS.notices, 'b 4 completed'), 1, 'every other notice still does')

  const back = notices.watch('c', 0)
  await waitFor('listening again', () => listening.listeningToRunning)
  t.equal(await admin.publish(KEYS.runningNotices, 'c 1 processing'), 1, 'a reader waiting again: it reaches the process again')
  back.close()
})

t.test('a reader that started waiting before the subscription took effect reads again once it has: a notice may have gone by', async (t) => {
  const { notices, subscriber: listening } = subscriber(t, 30_000)
  await waitFor('subscribed', () => notices.live)
  const watch = notices.watch('a', 1)
  t.notOk(listening.listeningToRunning, 'not yet listening when the reader starts waiting')
  t.equal(await watch.next(3000), 'resync', 'woken to read again, though no notice came')
  t.equal(await admin.publish(KEYS.runningNotices, 'a 2 processing'), 1)
  t.equal(await watch.next(1000), 'changed', 'then woken by each notice')
  watch.close()
})

t.test('a reader waiting before the process\'s subscriber connected is woken once it has', async (t) => {
  const notices = new JobNotices(false)
  const watch = notices.watch('a', 1)
  const client = createRedisClient({ url: server.url, rejectUnauthorized: true })
  const listening = new NoticeSubscriber(client, channels, notices, { lingerMs: 30_000 })
  t.teardown(() => listening.destroy())
  t.equal(await watch.next(3000), 'resync')
  await waitFor('listening to running records', () => listening.listeningToRunning)
  t.equal(await admin.publish(KEYS.runningNotices, 'a 2 processing'), 1, 'its subscription to running records followed the first')
  watch.close()
})

t.test('a subscription to the running records that Redis refuses (an ACL) has readers read on a timer, through reconnects, until it is allowed', async (t) => {
  await admin.sendCommand(['ACL', 'SETUSER', 'notices-only', 'on', '>secret', '~*', '+@all', 'resetchannels', `&${KEYS.notices}`])
  t.teardown(async () => { await admin.sendCommand(['ACL', 'DELUSER', 'notices-only']) })
  const notices = new JobNotices(false)
  const client = createRedisClient({ url: server.url.replace('redis://', 'redis://notices-only:secret@'), rejectUnauthorized: true })
  const logger = recordingLogger()
  const listening = new NoticeSubscriber(client, channels, notices, { lingerMs: 30_000, logger })
  t.teardown(() => listening.destroy())
  await waitFor('subscribed to the rest', () => notices.live)
  const watch = notices.watch('a', 1)
  t.equal(await watch.next(1000), 'resync', 'woken when refused')
  t.notOk(notices.readersLive, 'readers read on a timer')
  t.ok(notices.live, 'the other notices still arrive: finished records\' copies are still trusted')
  t.notOk(listening.listeningToRunning)
  await admin.sendCommand(['CLIENT', 'KILL', 'USER', 'notices-only'])
  await waitFor('reconnected', () => notices.live)
  await sleep(1500)
  t.notOk(notices.readersLive, 'still refused after a reconnect: readers still read on a timer')
  t.equal(logger.lines.length, 1, 'one line logged, however many retries')
  t.match(logger.lines[0], /^error: Redis refuses this process the running jobs' notice channel .*"channels":\["dr:\{0\}:jobs:notices:running"\]/, 'an error naming the channel')
  await admin.sendCommand(['ACL', 'SETUSER', 'notices-only', `&${KEYS.runningNotices}`])
  await waitFor('tried again and listening', () => listening.listeningToRunning, 5000)
  t.ok(notices.readersLive, 'readers told of every change again')
  t.match(logger.lines.at(-1), /^info: Redis allows this process the running jobs' notice channel again/)
  await watch.next(1000)
  t.equal(await admin.publish(KEYS.runningNotices, 'a 2 processing'), 1)
  t.equal(await watch.next(1000), 'changed')
  watch.close()
})

t.test('a resync that comes while a reader reads is not settled by that read: it may have run before the missed notice', async (t) => {
  const notices = new JobNotices(true)
  const watch = notices.watch('a', 0)
  notices.resyncWatchers()
  watch.settle(3)
  t.equal(await watch.next(100), 'resync')
  notices.emit({ id: 'a', version: 4, status: 'processing' })
  watch.settle(4)
  t.equal(await watch.next(100), 'timeout', 'a change the read saw is not news')
  notices.emit({ id: 'a', version: 5, status: 'processing' })
  notices.resyncWatchers()
  watch.settle(5)
  t.equal(await watch.next(100), 'resync', 'nor is a resync that came after a change settled with it')
  watch.close()
})
