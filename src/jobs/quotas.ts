/**
 * Per-tenant quotas: how many jobs a tenant (an API key's name) may have queued at once. A
 * default for every tenant, and overrides per tenant (`TENANT_QUOTAS`: `alice:queued=5000,bob:queued=20`).
 * The open API (no keys) has no tenant to hold to a quota: its clients are limited per address
 * by the rate limits instead.
 */
export class TenantQuotas {
  readonly #defaultQueued: number
  readonly #queued = new Map<string, number>()

  /** `defaultQueued`: 0 for no limit. `overrides`: the TENANT_QUOTAS text (validated by its pattern). */
  constructor (defaultQueued: number, overrides = '') {
    this.#defaultQueued = defaultQueued
    for (const entry of overrides.split(',').map((text) => text.trim()).filter((text) => text !== '')) {
      const [tenant, ...limits] = entry.split(':')
      for (const limit of limits) {
        const [name, value] = limit.split('=')
        if (name === 'queued') this.#queued.set(tenant as string, Number(value))
      }
    }
  }

  /** The most jobs `tenant` may have queued, or null for no limit. */
  maxQueued (tenant: string | null): number | null {
    if (tenant === null) return null
    const limit = this.#queued.get(tenant) ?? this.#defaultQueued
    return limit === 0 ? null : limit
  }
}

/** The pattern TENANT_QUOTAS must fit: comma-separated `name:queued=N`. */
export const TENANT_QUOTAS_PATTERN = '^([A-Za-z0-9_.-]{1,64}(:queued=\\d{1,9})+)?(\\s*,\\s*[A-Za-z0-9_.-]{1,64}(:queued=\\d{1,9})+)*$'
