/** The tenant of the jobs created through the open API (no keys): they share one queue. */
export const OPEN_TENANT = ''

/** A job's tenant for fair share and quotas: its owner, or the open API's shared tenant. */
export function tenantOf (owner: string | null | undefined): string {
  return owner ?? OPEN_TENANT
}

/**
 * Per-tenant limits on jobs running at once: `max` for every tenant, `of` for single ones (0: no
 * limit). The open API's tenant has none.
 */
export interface RunningLimits { max: number, of: Record<string, number> }

/** The most jobs `tenant` may run at once, or null for no limit. */
export function runningLimitOf (limits: RunningLimits | undefined, tenant: string): number | null {
  if (limits === undefined || tenant === OPEN_TENANT) return null
  const limit = limits.of[tenant] ?? limits.max
  return limit > 0 ? limit : null
}

/**
 * The in-memory store's queue with fair share, as the Redis claim script keeps it: one FIFO per
 * tenant, and a ring of the tenants with queued jobs. `shift` takes the head of the tenant at
 * the front of the ring and moves that tenant to the back, so a tenant's backlog never holds
 * back another tenant's jobs.
 */
export class TenantQueues {
  /** Insertion order is the ring: the first tenant is served next. */
  readonly #queues = new Map<string, string[]>()
  readonly #tenantOf = new Map<string, string>()

  get size (): number {
    return this.#tenantOf.size
  }

  /** The first job in line of each tenant with queued jobs. */
  * heads (): IterableIterator<string> {
    for (const queue of this.#queues.values()) yield queue[0] as string
  }

  /** Queued jobs of one tenant. */
  queuedOf (tenant: string): number {
    return this.#queues.get(tenant)?.length ?? 0
  }

  /** Queued jobs per tenant with any. */
  byTenant (): Map<string, number> {
    return new Map([...this.#queues].map(([tenant, queue]) => [tenant, queue.length]))
  }

  add (id: string, tenant: string, where: 'tail' | 'head'): void {
    this.remove(id)
    const queue = this.#queues.get(tenant) ?? []
    if (!this.#queues.has(tenant)) this.#queues.set(tenant, queue)
    if (where === 'tail') queue.push(id)
    else queue.unshift(id)
    this.#tenantOf.set(id, tenant)
  }

  /** Takes a job out of its queue; true when it was queued. */
  remove (id: string): boolean {
    const tenant = this.#tenantOf.get(id)
    if (tenant === undefined) return false
    this.#tenantOf.delete(id)
    const queue = this.#queues.get(tenant) as string[]
    queue.splice(queue.indexOf(id), 1)
    if (queue.length === 0) this.#queues.delete(tenant)
    return true
  }

  /**
   * The next job in the ring's order, its tenant moved to the back; tenants that `mayRun` says
   * no to are passed over, keeping their place. Undefined when no job may run.
   */
  shift (mayRun: (tenant: string) => boolean = () => true): string | undefined {
    let next: [string, string[]] | undefined
    for (const entry of this.#queues) {
      if (mayRun(entry[0])) {
        next = entry
        break
      }
    }
    if (next === undefined) return undefined
    const [tenant, queue] = next
    const id = queue.shift() as string
    this.#tenantOf.delete(id)
    this.#queues.delete(tenant)
    if (queue.length > 0) this.#queues.set(tenant, queue)
    return id
  }
}
