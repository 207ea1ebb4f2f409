import { randomBytes } from 'node:crypto'

/**
 * A new job id: a UUIDv7 (RFC 9562), whose first 48 bits are its creation time in ms. The time
 * lets any replica tell a job that may still be on its way to Redis (created moments ago on a
 * replica cut off from it) from one that does not exist.
 */
export function newJobId (nowMs = Date.now()): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(nowMs, 0, 6)
  bytes[6] = 0x70 | ((bytes[6] as number) & 0x0f)
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** When a UUIDv7 id was issued (ms), or null for any other id. */
export function issuedAtMs (id: string): number | null {
  if (id.length !== 36 || id[14] !== '7') return null
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
}

/** Whether the id was issued within `ms` of now (either side: a replica's clock may run ahead). */
export function issuedWithin (id: string, ms: number): boolean {
  const issued = issuedAtMs(id)
  return issued !== null && Math.abs(Date.now() - issued) <= ms
}
