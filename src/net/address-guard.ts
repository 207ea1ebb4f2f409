import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent } from 'undici'

/**
 * A URL that points (or resolves) at an address the SSRF guard refuses. The message goes to
 * clients, so it does not name the address (what a name resolves to is the server's network,
 * not theirs to map); `host` and `address` are for the server log.
 */
export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError'
  readonly code = 'EBLOCKEDADDRESS'
  readonly host: string
  readonly address: string
  constructor (host: string, address: string) {
    super('refused: private, loopback or link-local address (set ALLOW_PRIVATE_URLS=true to allow it)')
    this.host = host
    this.address = address
  }
}

/** Decides which resolved addresses user-supplied URLs may reach. */
export type AddressPolicy = (address: string) => boolean

/**
 * Only globally routable unicast addresses: no loopback, private (RFC 1918, ULA), link-local
 * (cloud metadata at 169.254.169.254 included), carrier-grade NAT, multicast or reserved.
 * IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged as that address; the
 * deprecated IPv4-compatible form (`::a.b.c.d`) and Teredo, whose embedded address is obscured,
 * are refused.
 */
export const publicAddressesOnly: AddressPolicy = (address) => {
  if (!ipaddr.isValid(address)) return false
  const parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv4') return parsed.range() === 'unicast'
  // ipaddr.js reads any `::a.b.c.d` as IPv4-mapped; the URL parser writes the digits out as they are.
  const v6 = ipaddr.parse(new URL(`http://[${address}]`).hostname.slice(1, -1)) as ipaddr.IPv6
  const embedded = embeddedIPv4(v6)
  if (embedded !== undefined) return embedded !== null && embedded.range() === 'unicast'
  return v6.range() === 'unicast'
}

/** The IPv4 address an IPv6 form carries; null: a form that carries one but is refused; undefined: none. */
function embeddedIPv4 (v6: ipaddr.IPv6): ipaddr.IPv4 | null | undefined {
  const parts = v6.parts
  const v4 = (high: number, low: number): ipaddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff])
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address()
  // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
  if (parts[0] === 0x2002) return v4(parts[1] as number, parts[2] as number)
  // NAT64 (RFC 6052 well-known prefix): 64:ff9b::/96 carries its last 32 bits.
  if (parts[0] === 0x64 && parts[1] === 0xff9b && parts.slice(2, 6).every((p) => p === 0)) return v4(parts[6] as number, parts[7] as number)
  // Teredo (2001::/32), and the deprecated IPv4-compatible form (::/96 but :: and ::1).
  if (parts[0] === 0x2001 && parts[1] === 0) return null
  if (parts.slice(0, 6).every((p) => p === 0) && ((parts[6] as number) !== 0 || (parts[7] as number) > 1)) return null
  return undefined
}

export const anyAddress: AddressPolicy = () => true

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `lookup` for net.connect/tls.connect that refuses hosts resolving to an address the policy
 * rejects. It runs for every connection, after DNS resolution, so redirects and DNS rebinding
 * are checked too: the address checked is the address connected to.
 */
export function guardedLookup (policy: AddressPolicy) {
  return (hostname: string, options: { all?: boolean, family?: number | string }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, addresses) => {
      if (err !== null) { callback(err, []); return }
      const blocked = addresses.find((entry) => !policy(entry.address))
      if (blocked !== undefined) { callback(new BlockedAddressError(hostname, blocked.address), []); return }
      if (options.all === true) { callback(null, addresses); return }
      const first = addresses[0] as LookupAddress
      callback(null, first.address, first.family)
    })
  }
}

/** Literal IP hosts never reach `lookup`, so they are checked before a request starts. */
export function assertLiteralHostAllowed (url: URL, policy: AddressPolicy): void {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) !== 0 && !policy(host)) throw new BlockedAddressError(url.hostname, host)
}

/** An undici dispatcher whose every connection goes through `guardedLookup(policy)`. */
export function guardedAgent (policy: AddressPolicy, options: { connections?: number } = {}): Agent {
  return new Agent({ connect: { lookup: guardedLookup(policy) } as object, ...options })
}
