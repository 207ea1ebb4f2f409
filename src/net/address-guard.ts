import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent } from 'undici'

/** A URL that points (or resolves) at an address the SSRF guard refuses. */
export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError'
  readonly code = 'EBLOCKEDADDRESS'
  constructor (host: string, address: string) {
    super(`${host} resolves to ${address}, a private, loopback or link-local address (set ALLOW_PRIVATE_URLS=true to allow it)`)
  }
}

/** Decides which resolved addresses user-supplied URLs may reach. */
export type AddressPolicy = (address: string) => boolean

/**
 * Only globally routable unicast addresses: no loopback, private (RFC 1918, ULA), link-local
 * (cloud metadata at 169.254.169.254 included), carrier-grade NAT, multicast or reserved.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export const publicAddressesOnly: AddressPolicy = (address) => {
  if (!ipaddr.isValid(address)) return false
  let parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address()
  return parsed.range() === 'unicast'
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
