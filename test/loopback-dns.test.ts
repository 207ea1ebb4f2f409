import { lookup } from 'node:dns/promises'
import t from 'tap'

t.test('tests reach loopback only: a public host name fails as unresolvable, localhost resolves', async (t) => {
  await t.rejects(lookup('example.org'), { code: 'ENOTFOUND' }, 'no DNS query leaves the machine (.taprc node-arg)')
  await t.rejects(fetch('http://example.org/'), { cause: { code: 'ENOTFOUND' } })
  t.match(await lookup('localhost'), { address: /^(127\.0\.0\.1|::1)$/ })
})
