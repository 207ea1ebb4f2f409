import t, { type Test } from 'tap'
import { BlockedAddressError, anyAddress, publicAddressesOnly } from '../../src/net/address-guard.js'
import { plainReason } from '../../src/net/plain-reason.js'
import { PageFetcher } from '../../src/research/reader/page-fetcher.js'
import { PageReader } from '../../src/research/reader/page-reader.js'
import { startTestSite } from '../helpers/test-site.js'

const never = new AbortController().signal

function reader (t: Test, options: ConstructorParameters<typeof PageFetcher>[0] = {}): PageReader {
  const r = new PageReader(new PageFetcher({ policy: anyAddress, ...options }))
  t.teardown(() => r.close())
  return r
}

t.test('an HTML page becomes its article text, titled, without scripts, navigation or footers, its links resolved', async (t) => {
  const site = await startTestSite(t)
  const page = await reader(t).read(`${site.url}/retry-backoff.html`, never)
  t.equal(page.title, 'Retry backoff for failed jobs')
  t.match(page.text, /^# Retry backoff for failed jobs/)
  t.match(page.text, /Exponential backoff waits longer after each failed attempt/)
  t.match(page.text, /## Choosing the cap/, 'sub-headings are kept as headings')
  t.notMatch(page.text, /tracking|copyright notice/, 'no script or footer text')
  t.same(page.links.map((l) => l.url), [`${site.url}/`, `${site.url}/jitter.html`])
  t.equal(page.links[1]?.text, 'jitter for retries')
  t.ok(page.bytes > 1000)
})

t.test('plain text is read as it is, titled by its first line', async (t) => {
  const site = await startTestSite(t)
  const page = await reader(t).read(`${site.url}/notes.txt`, never)
  t.equal(page.title, 'Operator notes on dead-letter handling')
  t.match(page.text, /exhausts its retry attempts/)
})

t.test('redirects are followed up to a cap; the final URL is reported', async (t) => {
  const site = await startTestSite(t)
  const r = reader(t)
  const page = await r.read(`${site.url}/moved`, never)
  t.equal(page.finalUrl, `${site.url}/retry-backoff.html`)
  t.equal(page.url, `${site.url}/moved`)
  await t.rejects(r.read(`${site.url}/loop`, never), { name: 'PageReadError', message: 'more than 5 redirects', url: `${site.url}/loop` })
  t.equal(site.requests.filter((p) => p === '/loop').length, 6, 'the first request and five redirects, then it stops')
  await t.rejects(r.read(`${site.url}/redirect?to=file:///etc/passwd`, never), { message: /only http and https URLs can be read, not file:/ })
})

t.test('pages that cannot be read are refused with a reason: errors, PDFs, other types, empty pages', async (t) => {
  const site = await startTestSite(t)
  const r = reader(t)
  await t.rejects(r.read(`${site.url}/missing`, never), { name: 'PageReadError', message: 'HTTP 404' })
  await t.rejects(r.read(`${site.url}/paper.pdf`, never), { message: /PDF documents are not read/ })
  await t.rejects(r.read(`${site.url}/photo.png`, never), { message: /unsupported content type image\/png/ })
  await t.rejects(r.read(`${site.url}/empty.html`, never), { message: 'the page has no readable text' })
  await t.rejects(r.read('http://127.0.0.1:1/', never), { name: 'PageReadError', message: 'could not connect: connection refused' })
})

t.test('the size cap holds with and without a Content-Length', async (t) => {
  const site = await startTestSite(t)
  const r = reader(t, { maxBytes: 2 * 1024 * 1024 })
  await t.rejects(r.read(`${site.url}/huge-declared`, never), { message: 'larger than the 2097152-byte limit (3145728 bytes)' })
  await t.rejects(r.read(`${site.url}/huge`, never), { message: 'larger than the 2097152-byte limit' })
})

t.test('a page that never finishes hits the per-page deadline', async (t) => {
  const site = await startTestSite(t)
  const started = Date.now()
  await t.rejects(reader(t, { timeoutMs: 300 }).read(`${site.url}/slow`, never), { message: 'no complete answer within 300 ms' })
  t.ok(Date.now() - started < 2000)
})

t.test('the job\'s abort stops a read at once and surfaces as the abort reason, not a skipped page', async (t) => {
  const site = await startTestSite(t)
  const controller = new AbortController()
  const reason = new Error('cancelled by the client')
  const read = reader(t).read(`${site.url}/slow`, controller.signal)
  while (!site.requests.includes('/slow')) await new Promise((resolve) => setTimeout(resolve, 5))
  const abortedAt = Date.now()
  controller.abort(reason)
  await t.rejects(read, reason)
  while (site.slowClosedAt === null) await new Promise((resolve) => setTimeout(resolve, 5))
  t.ok(site.slowClosedAt - abortedAt < 1000, `the server saw the connection closed ${site.slowClosedAt - abortedAt} ms after the abort`)
})

t.test('the SSRF guard refuses private, loopback and link-local addresses: literal, resolved by DNS, and after a redirect', async (t) => {
  const site = await startTestSite(t)
  const port = new URL(site.url).port
  const guarded = reader(t, { policy: publicAddressesOnly })
  for (const url of [`${site.url}/`, `http://localhost:${port}/`, `http://[::1]:${port}/`, 'http://169.254.169.254/latest/meta-data/', 'http://10.1.2.3/', `http://[::ffff:127.0.0.1]:${port}/`]) {
    await t.rejects(guarded.read(url, never), { name: 'PageReadError', message: /private, loopback or link-local address \(set ALLOW_PRIVATE_URLS=true/ }, url)
  }
  t.same(site.requests, [], 'no request reached the server')

  // A guard that lets the test reach 127.0.0.1 only: a redirect to another loopback address is refused.
  const only127 = reader(t, { policy: (address) => address === '127.0.0.1' })
  t.equal((await only127.read(`${site.url}/jitter.html`, never)).title, 'Why retries need jitter')
  await t.rejects(only127.read(`${site.url}/redirect?to=${encodeURIComponent(`http://127.0.0.2:${port}/jitter.html`)}`, never), { message: /^refused: private, loopback or link-local address/ })
  t.equal(site.requests.filter((p) => p === '/jitter.html').length, 1, 'only the allowed request reached the page')
})

t.test('a reason says plainly why a page was not read: never the address a name resolved to, nor the resolver\'s or socket\'s raw error', async (t) => {
  const site = await startTestSite(t)
  const port = new URL(site.url).port
  const leaks = /127\.0\.0\.1|::1|resolves to|getaddrinfo|ENOTFOUND|ECONNREFUSED|EAI_/
  const reasonOf = async (r: PageReader, url: string): Promise<string> => await r.read(url, never).then(() => 'read', (err: Error) => err.message)
  const guarded = reader(t, { policy: publicAddressesOnly })
  for (const url of [`http://localhost:${port}/`, `http://[::1]:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`]) {
    const reason = await reasonOf(guarded, url)
    t.match(reason, /^refused: private, loopback or link-local address/, url)
    t.notMatch(reason, leaks, `${url}: ${reason}`)
  }
  for (const r of [guarded, reader(t)]) {
    const reason = await reasonOf(r, 'http://no-such-host.invalid/page')
    t.equal(reason, 'could not resolve the host name')
    t.notMatch(reason, leaks)
  }
  const refused = await reasonOf(reader(t), 'http://localhost:1/')
  t.equal(refused, 'could not connect: connection refused')
  t.notMatch(refused, leaks)
  t.same(site.requests, [], 'no request reached the server')
})

t.test('errors whose messages name addresses are told by their code alone, wrapped or not', async (t) => {
  const coded = (message: string, code: string, cause?: Error): Error => Object.assign(new Error(message, { cause }), { code })
  t.equal(plainReason(coded('Connect Timeout Error (attempted addresses: 10.0.0.5:443, timeout: 10000ms)', 'UND_ERR_CONNECT_TIMEOUT')), 'could not connect: timed out')
  t.equal(plainReason(new TypeError('fetch failed', { cause: coded('connect EHOSTUNREACH 10.0.0.5:443', 'EHOSTUNREACH') })), 'could not connect: host unreachable')
  t.equal(plainReason(coded('Hostname/IP does not match certificate\'s altnames: IP: 10.0.0.5 is not in the cert\'s list', 'ERR_TLS_CERT_ALTNAME_INVALID')), 'TLS failed: the certificate could not be verified')
  t.equal(plainReason(new Error('something at 10.0.0.5')), 'the request failed', 'an error of no known kind is not repeated')
  t.equal(plainReason(new Error('wrapped', { cause: new BlockedAddressError('db.internal', '10.0.0.5') })), new BlockedAddressError('h', 'a').message)
})

t.test('which addresses count as public', async (t) => {
  for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111']) t.ok(publicAddressesOnly(address), address)
  for (const address of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', 'fe80::1', 'fc00::1', '::ffff:10.0.0.1', 'not-an-ip']) {
    t.notOk(publicAddressesOnly(address), address)
  }
  t.match(new BlockedAddressError('db.internal', '10.0.0.5'), { host: 'db.internal', address: '10.0.0.5', message: /^refused: private/ }, 'the address is kept for the log, not told')
  t.notMatch(new BlockedAddressError('db.internal', '10.0.0.5').message, /db\.internal|10\.0\.0\.5/)
})

t.test('IPv6 forms that carry an IPv4 address are judged by it, or refused: IPv4-compatible, 6to4, Teredo, NAT64', async (t) => {
  for (const address of ['::127.0.0.1', '::a9fe:a9fe', '::8.8.8.8', '2002:7f00:1::1', '2002:c0a8:101::1', '2002:a9fe:a9fe::', '64:ff9b::a9fe:a9fe', '64:ff9b::10.0.0.1', '2001:0:4136:e378:8000:63bf:3fff:fdd2']) {
    t.notOk(publicAddressesOnly(address), `${address} refused`)
  }
  for (const address of ['2002:808:808::1', '64:ff9b::808:808']) t.ok(publicAddressesOnly(address), `${address} (carries 8.8.8.8) allowed`)
})
