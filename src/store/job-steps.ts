import type { MemoryJobStore } from './memory.js'
import type { RedisGate } from './redis-gate.js'

/** What became of a step's result: kept where the job lives, kept in this process only, or refused (the claim moved on). */
export type StepSaved = 'saved' | 'kept_here' | 'fenced'

/**
 * Where the results of a job's checkpointed steps live between its attempts (see
 * runner/checkpoints.ts): in Redis beside the record (shared by replicas, same TTL, dropped when
 * the job ends), or in this process for jobs that live only here.
 */
export interface StepLog {
  /** The results kept for the job: step name -> result JSON. */
  load (id: string): Promise<Map<string, string>>
  /** Keeps one result while `fence` is the job's claim. */
  save (id: string, fence: string, name: string, json: string): Promise<StepSaved>
  /** Forgets the job's results (it ended). */
  drop (id: string): Promise<void>
}

export interface JobStepsOptions {
  memory: MemoryJobStore
  gate?: RedisGate
  /** Whether this process answers for the job alone (no Redis, or created here during an outage). */
  isLocal: (id: string) => boolean
  ttlSeconds: number
  /** Most bytes of results kept in this process, oldest job's dropped first. */
  maxLocalBytes: number
}

interface LocalSteps { results: Map<string, string>, bytes: number, expiresAt: number }

/**
 * The step log of the fallback store: Redis for every job Redis holds, fenced by the claim's
 * token in the same script that writes; this process's Map for jobs that live here, fenced by
 * the Map's claim. A result Redis cannot take now is kept here, so an attempt on this replica
 * still finds it; it is an optimisation, never a reason to fail a job.
 */
export class JobSteps implements StepLog {
  readonly #options: JobStepsOptions
  readonly #local = new Map<string, LocalSteps>()
  #localBytes = 0

  constructor (options: JobStepsOptions) {
    this.#options = options
  }

  /** Bytes of results kept in this process. */
  get localBytes (): number {
    return this.#localBytes
  }

  async load (id: string): Promise<Map<string, string>> {
    const results = new Map(this.#alive(id)?.results)
    const { gate, isLocal } = this.#options
    if (gate === undefined || isLocal(id)) return results
    const remote = await gate.call((redis) => redis.loadSteps(id))
    if (remote.ok) for (const [name, json] of remote.value) results.set(name, json)
    return results
  }

  async save (id: string, fence: string, name: string, json: string): Promise<StepSaved> {
    const { gate, isLocal, memory } = this.#options
    if (gate === undefined || isLocal(id)) {
      if (memory.claimOf(id)?.fence !== fence) return 'fenced'
      this.#keep(id, name, json)
      return 'saved'
    }
    const remote = await gate.call((redis) => redis.saveStep(id, fence, name, json), 'write')
    if (remote.ok) return remote.value ? 'saved' : 'fenced'
    this.#keep(id, name, json)
    return 'kept_here'
  }

  async drop (id: string): Promise<void> {
    this.#forget(id)
  }

  #alive (id: string): LocalSteps | undefined {
    const steps = this.#local.get(id)
    if (steps !== undefined && steps.expiresAt <= Date.now()) {
      this.#forget(id)
      return undefined
    }
    return steps
  }

  #keep (id: string, name: string, json: string): void {
    let steps = this.#alive(id)
    if (steps === undefined) {
      steps = { results: new Map(), bytes: 0, expiresAt: 0 }
      this.#local.set(id, steps)
    }
    const bytes = Buffer.byteLength(name) + Buffer.byteLength(json)
    const replaced = steps.results.get(name)
    if (replaced !== undefined) this.#resize(steps, -(Buffer.byteLength(name) + Buffer.byteLength(replaced)))
    steps.results.set(name, json)
    steps.expiresAt = Date.now() + this.#options.ttlSeconds * 1000
    this.#resize(steps, bytes)
    // Other jobs' results go first, oldest first; then this job's (done again if it needs them).
    for (const [oldest] of this.#local) {
      if (this.#localBytes <= this.#options.maxLocalBytes) break
      if (oldest !== id) this.#forget(oldest)
    }
    if (this.#localBytes > this.#options.maxLocalBytes) this.#forget(id)
  }

  #resize (steps: LocalSteps, bytes: number): void {
    steps.bytes += bytes
    this.#localBytes += bytes
  }

  #forget (id: string): void {
    const steps = this.#local.get(id)
    if (steps === undefined) return
    this.#localBytes -= steps.bytes
    this.#local.delete(id)
  }
}
