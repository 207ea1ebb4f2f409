import { BlockedAddressError } from './address-guard.js'

/**
 * Why a request to a client's URL failed, in words fit to show that client. The errors of
 * Node's resolver and sockets and of undici name what the server saw of its network (`getaddrinfo
 * ENOTFOUND host`, `connect ECONNREFUSED 10.0.0.5:80`, a connect timeout's "attempted addresses"):
 * a client could map the server's network with them, so only these fixed phrases go out, and the
 * error itself belongs in the server log.
 */
export function plainReason (err: unknown): string {
  for (const e of causeChain(err)) {
    if (e instanceof BlockedAddressError) return e.message
    const reason = byCode(String((e as { code?: unknown }).code ?? ''))
    if (reason !== null) return reason
  }
  return 'the request failed'
}

/** Whether the SSRF guard refused the address: undici hands on the guard's error as a cause. */
export function refusedByGuard (err: unknown): boolean {
  return causeChain(err).some((e) => e instanceof BlockedAddressError)
}

function causeChain (err: unknown): Error[] {
  const chain: Error[] = []
  for (let e: unknown = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e)
  return chain
}

const BY_CODE: Record<string, string> = {
  ENOTFOUND: 'could not resolve the host name',
  EAI_AGAIN: 'could not resolve the host name (the name server did not answer in time)',
  EAI_FAIL: 'could not resolve the host name',
  EAI_NODATA: 'could not resolve the host name',
  EAI_NONAME: 'could not resolve the host name',
  ECONNREFUSED: 'could not connect: connection refused',
  ETIMEDOUT: 'could not connect: timed out',
  UND_ERR_CONNECT_TIMEOUT: 'could not connect: timed out',
  EHOSTUNREACH: 'could not connect: host unreachable',
  EHOSTDOWN: 'could not connect: host unreachable',
  ENETUNREACH: 'could not connect: network unreachable',
  ENETDOWN: 'could not connect: network unreachable',
  ECONNRESET: 'the connection was closed before a complete answer',
  EPIPE: 'the connection was closed before a complete answer',
  UND_ERR_SOCKET: 'the connection was closed before a complete answer',
  UND_ERR_CLOSED: 'the connection was closed before a complete answer',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'no complete answer in time',
  UND_ERR_HEADERS_OVERFLOW: 'the answer\'s headers are too large',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'the answer was cut short',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'the answer is too large'
}

function byCode (code: string): string | null {
  if (code === '') return null
  if (code in BY_CODE) return BY_CODE[code] as string
  // Certificate and TLS errors (CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_...) carry
  // the certificate's names and addresses in their messages.
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return 'TLS failed: the certificate could not be verified'
  if (/^ERR_(TLS|SSL)_/.test(code)) return 'TLS failed'
  if (code.startsWith('HPE_')) return 'the answer is not valid HTTP'
  return null
}
