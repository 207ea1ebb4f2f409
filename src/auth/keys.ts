import { createHash } from 'node:crypto'

export interface Principal {
  /** The tenant that owns what this caller creates; null when the API runs open (no keys). */
  tenant: string | null
  admin: boolean
}

export const OPEN_ACCESS: Principal = { tenant: null, admin: true }

/**
 * The configured keys, by the SHA-256 of each key: the service never holds a key itself, so
 * neither the environment nor a memory dump gives one away.
 */
export class KeyRing {
  readonly #byHash = new Map<string, Principal>()

  constructor (apiKeys: string, adminKeys: string) {
    for (const [list, admin] of [[apiKeys, false], [adminKeys, true]] as const) {
      for (const pair of list.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
        const [name, hash] = pair.split(':') as [string, string]
        this.#byHash.set(hash.toLowerCase(), { tenant: name, admin })
      }
    }
  }

  /** No keys configured: everything is open (the local default). */
  get open (): boolean {
    return this.#byHash.size === 0
  }

  identify (key: string): Principal | null {
    return this.#byHash.get(sha256Hex(key)) ?? null
  }
}

export function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The key a request carries: `Authorization: Bearer <key>`, or `X-API-Key: <key>`. */
export function keyFromHeaders (authorization: string | undefined, apiKey: string | string[] | undefined): string | null {
  const bearer = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? null
  if (bearer !== null) return bearer
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return apiKey.trim()
  return null
}
