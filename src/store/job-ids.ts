import { randomUUID } from 'node:crypto'

/**
 * A new job id: a UUIDv7 (RFC 9562), whose first 48 bits are its creation time in ms. The time
 * lets any replica tell a job that may still be on its way to Redis (created moments ago on a
 * replica cut off from it) from one that does not exist. The random bits and the variant come
 * from randomUUID (which draws from a pooled buffer: a fresh randomBytes call per id cost a
 * measurable share of a create).
 */
export function newJobId (nowMs = Date.now()): string {
  const time = nowMs.toString(16).padStart(12, '0')
  const random = randomUUID()
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`
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
