import type { RunningLimits } from '../store/tenant-queues.js'

/**
 * Per-tenant quotas: how many jobs a tenant (an API key's name) may have queued, and running,
 * at once. A default for every tenant, and overrides per tenant (`TENANT_QUOTAS`:
 * `alice:queued=5000:running=8,bob:queued=20`). The open API (no keys) has no tenant to hold to
 * a quota: its clients are limited per address by the rate limits instead.
 */
export class TenantQuotas {
  readonly #defaults: Limits
  readonly #of = new Map<string, Partial<Limits>>()

  /** `queued`, `running`: 0 for no limit. `overrides`: the TENANT_QUOTAS text (validated by its pattern). */
  constructor (queued: number, running = 0, overrides = '') {
    this.#defaults = { queued, running }
    for (const entry of overrides.split(',').map((text) => text.trim()).filter((text) => text !== '')) {
      const [tenant, ...limits] = entry.split(':')
      const own: Partial<Limits> = {}
      for (const limit of limits) {
        const [name, value] = limit.split('=') as [keyof Limits, string]
        own[name] = Number(value)
      }
      this.#of.set(tenant as string, own)
    }
  }

  /** The most jobs `tenant` may have queued, or null for no limit. */
  maxQueued (tenant: string | null): number | null {
    if (tenant === null) return null
    const limit = this.#of.get(tenant)?.queued ?? this.#defaults.queued
    return limit === 0 ? null : limit
  }

  /** The limits on running jobs, as the stores' claims take them; undefined when there are none. */
  runningLimits (): RunningLimits | undefined {
    const of: Record<string, number> = {}
    for (const [tenant, limits] of this.#of) if (limits.running !== undefined) of[tenant] = limits.running
    if (this.#defaults.running === 0 && Object.values(of).every((limit) => limit === 0)) return undefined
    return { max: this.#defaults.running, of }
  }
}

interface Limits { queued: number, running: number }

/** The pattern TENANT_QUOTAS must fit: comma-separated `name:queued=N:running=M` (either or both). */
export const TENANT_QUOTAS_PATTERN = '^([A-Za-z0-9_.-]{1,64}(:(queued|running)=\\d{1,9})+)?(\\s*,\\s*[A-Za-z0-9_.-]{1,64}(:(queued|running)=\\d{1,9})+)*$'
