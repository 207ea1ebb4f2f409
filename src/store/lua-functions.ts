import { createHash } from 'node:crypto'
import { ErrorReply } from 'redis'
import { LUA_KEY_GUARD, type ScriptKeyName, luaShared } from './keys.js'
import { libraryFor } from './lua-library.js'

/**
 * The hottest job scripts as Redis Functions of one library, loaded once per Redis (FUNCTION
 * LOAD) instead of sent whole: an EVALSHA runs its script's text on every call, defining each
 * library function it carries again (about a sixth of what a job costs Redis, counted in
 * docs/benchmark.md). The library's name holds a hash of its text, so two versions of the
 * service never run each other's code; a function's KEYS come in `keys`, set in `K` on entry.
 */
export interface FunctionSpec {
  /** The function's name within the library. */
  name: string
  /** The script (src/store/lua/<script>.lua) whose body it runs. */
  script: string
  source: string
  keyNames: readonly ScriptKeyName[]
  /**
   * Redis's script flags. None: a write, refused upfront past maxmemory (OOM), as a script sent
   * whole is when its first write is one Redis refuses then (INCR, SET...). `allow-oom` where a
   * script sent whole ran past maxmemory, or refuses on its own first.
   */
  flags: string[]
}

export interface FunctionLibrary {
  /** deep_research_<hash of the text>. */
  readonly name: string
  /** What FUNCTION LOAD is sent. */
  readonly text: string
  /** A function's name as FCALL takes it (functions share one namespace across libraries). */
  functionName (name: string): string
}

export function functionLibrary (specs: FunctionSpec[], library: string, publish: string): FunctionLibrary {
  const bodies = specs.map((spec) => ({ spec, body: [enter(spec), spec.source].join('\n') }))
  const definitions = [
    'local K = nil',
    'local ARGV = nil',
    luaShared(),
    `local PUBLISH = '${publish}'`,
    libraryFor(bodies.map(({ body }) => body).join('\n'), library),
    // Made at a function's first call: a library's own code runs without setmetatable.
    ...specs.map((spec) => `local K_${spec.name} = nil`)
  ].join('\n')
  // The names hold the hash of everything else, flags included: a library that differs in
  // anything has another name, so it is loaded rather than taken for the one already there.
  const placeholder = '{{library}}'
  const registrations = bodies.map(({ spec, body }) => [
    `redis.register_function{function_name = '${placeholder}_${spec.name}', flags = { ${spec.flags.map((flag) => `'${flag}'`).join(', ')} }, callback = function (keys, args)`,
    body,
    'end}'
  ].join('\n'))
  const code = [definitions, ...registrations].join('\n')
  const name = `deep_research_${createHash('sha1').update(code).digest('hex').slice(0, 16)}`
  const functionName = (fn: string): string => `${name}_${fn}`
  return { name, text: [`#!lua name=${name}`, code.replaceAll(`'${placeholder}_`, `'${name}_`)].join('\n'), functionName }
}

/** A call's start: its keys by name in K (the same names on every call of one function), its ARGV, fresh per-call state. */
function enter (spec: FunctionSpec): string {
  const assign = spec.keyNames.length === 0 ? [] : [`K.${spec.keyNames.join(', K.')} = ${spec.keyNames.map((_, i) => `keys[${i + 1}]`).join(', ')}`]
  return [`K_${spec.name} = K_${spec.name} or setmetatable({}, ${LUA_KEY_GUARD})`, `K = K_${spec.name}`, ...assign, 'ARGV = args', 'begin_call()'].join('\n')
}

/** A Redis that lost its functions (restarted without them, or flushed): load and call again. */
export function isFunctionMissing (err: unknown): boolean {
  return err instanceof ErrorReply && err.message.startsWith('ERR Function not found')
}

/**
 * A Redis before 7, or a user its ACL keeps from FCALL or FUNCTION LOAD: scripts are sent whole
 * instead. Not a NOPERM for a key or a channel, which a script sent whole gets as well.
 */
function isUnavailable (err: unknown): boolean {
  return err instanceof ErrorReply && /^(?:ERR unknown command|NOPERM .*'(?:fcall|function\|load)' command)/i.test(err.message)
}

/**
 * Whether a store calls functions, and their loading when a Redis lacks them. Functions stay
 * on until a Redis answers that it has none or forbids them (then every script goes by EVALSHA
 * for this store's life); a load refused otherwise (OOM, MISCONF, READONLY), or not answered,
 * sends that one call whole, as before functions, and the next call that finds them missing
 * loads again.
 */
export class StoredFunctions {
  readonly library: FunctionLibrary
  #on: boolean
  readonly #load: (nearKey: string | undefined) => Promise<unknown>
  #loading: Promise<boolean> | undefined

  /** `load`: sends `FUNCTION LOAD REPLACE <text>` to the Redis that holds `nearKey` (a Cluster's shard). */
  constructor (library: FunctionLibrary, on: boolean, load: (nearKey: string | undefined) => Promise<unknown>) {
    this.library = library
    this.#on = on
    this.#load = load
  }

  get on (): boolean {
    return this.#on
  }

  /**
   * After a failed FCALL: the same call again once the library is loaded, or sent whole
   * (`whole`), or the error as it came when it is not about functions.
   */
  async recover<T> (err: unknown, nearKey: string | undefined, again: () => Promise<T>, whole: () => Promise<T>): Promise<T> {
    if (isUnavailable(err)) {
      this.#on = false
      return await whole()
    }
    if (!isFunctionMissing(err)) throw err
    if (!await this.#loaded(nearKey)) return await whole()
    return await again().catch(async (next: unknown) => {
      // Another shard than the one loaded (a Cluster's calls share one load at a time), or flushed again.
      if (isFunctionMissing(next)) return await whole()
      throw next
    })
  }

  /**
   * Loads the library where `nearKey` lives; calls that find it missing meanwhile share the load.
   * false when it was not loaded: refused, or not answered in time. The call is then sent whole
   * and fails or not on its own, so a call that surely did not run is never reported as one
   * that may have (a load's deadline passing).
   */
  async #loaded (nearKey: string | undefined): Promise<boolean> {
    this.#loading ??= this.#load(nearKey).then(() => true, (err: unknown) => {
      if (isUnavailable(err)) this.#on = false
      return false
    }).finally(() => { this.#loading = undefined })
    return await this.#loading
  }
}
