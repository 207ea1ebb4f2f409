// Loaded into every test process (.taprc node-arg): tests talk to loopback only, so a host name
// other than localhost fails here at once, as the resolver would fail it, and no query for it
// leaves the machine. Names such as `no-such-host.invalid` test the "cannot resolve" paths.
import dns from 'node:dns'
import { syncBuiltinESMExports } from 'node:module'
import { isIP } from 'node:net'

const resolveLocally = (hostname) => isIP(hostname) !== 0 || /^localhost\.?$/i.test(hostname)
const notFound = (hostname) => Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname })

const realLookup = dns.lookup
dns.lookup = function lookup (hostname, options, callback) {
  if (resolveLocally(hostname)) return realLookup.call(this, hostname, options, callback)
  process.nextTick(typeof options === 'function' ? options : callback, notFound(hostname))
  return {}
}
const realPromisesLookup = dns.promises.lookup
dns.promises.lookup = async function lookup (hostname, options) {
  if (resolveLocally(hostname)) return await realPromisesLookup.call(this, hostname, options)
  throw notFound(hostname)
}
syncBuiltinESMExports()
