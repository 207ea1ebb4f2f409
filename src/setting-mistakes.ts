/**
 * The service's own namespaces: a variable in one of them that is not a setting is a mistake
 * (a setting misremembered), whatever its distance to the real ones. Words other software uses
 * too are left out: HTTP_ and PAGE_ (HTTP_PROXY), RUNNER_ (every GitHub Actions job sets
 * RUNNER_OS), JOB_ (Jenkins sets JOB_NAME); a typo of one of their settings is still caught as
 * a near name.
 */
const OWN_PREFIXES = ['REDIS_', 'CACHE_', 'TENANT_', 'SSE_', 'WEBHOOK_', 'RESEARCH_', 'READER_', 'LLM_', 'PROVIDER_',
  'RATE_LIMIT_', 'STEP_', 'STEPS_', 'SHUTDOWN_', 'HEALTH_', 'NOOP_', 'PROGRESS_', 'STRICT_', 'REPLICA_']
/** What Kubernetes service links and Docker links set for a service named like a namespace (REDIS_PORT_6379_TCP_ADDR). */
const SERVICE_LINK = /_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP)(_(ADDR|PORT|PROTO))?)?|NAME|ENV_\w+)$/

/** Names (and settings) shorter than this are compared only exactly: PGHOST is not HOST misspelt. */
const MIN_NEAR_LENGTH = 6
/** Edits (a letter added, dropped, changed or two swapped) that still make a name "meant" as a setting: one, or two in a long name. */
const MAX_EDITS = 2
const LONG_NAME = 12

/**
 * What is wrong with the names of these variables, one sentence each: a name close to a
 * setting (a typo, another case, a letter too many) names the setting meant; any other name in
 * the service's namespaces is named as not a setting. Exact settings and everyone else's
 * variables are left alone.
 */
export function mistakesAmong (env: NodeJS.ProcessEnv, settings: readonly string[]): string[] {
  const known = new Set(settings)
  const mistakes: string[] = []
  for (const name of Object.keys(env).sort()) {
    if (known.has(name)) continue
    const upper = name.toUpperCase()
    const meant = known.has(upper) ? upper : nearest(upper, settings)
    if (meant !== null) mistakes.push(`${name} is not a setting; did you mean ${meant}?`)
    else {
      const prefix = OWN_PREFIXES.find((p) => upper.startsWith(p))
      if (prefix !== undefined && !SERVICE_LINK.test(upper)) mistakes.push(`${name} is not a setting of this service (its ${prefix} settings are listed in docs/configuration.md)`)
    }
  }
  return mistakes
}

function nearest (name: string, settings: readonly string[]): string | null {
  if (name.length < MIN_NEAR_LENGTH) return null
  const allowed = name.length >= LONG_NAME ? MAX_EDITS : 1
  let best: { setting: string, edits: number } | null = null
  for (const setting of settings) {
    if (setting.length < MIN_NEAR_LENGTH) continue
    const edits = editDistance(name, setting)
    if (edits <= allowed && (best === null || edits < best.edits)) best = { setting, edits }
  }
  return best?.setting ?? null
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbours. */
function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > MAX_EDITS) return MAX_EDITS + 1
  const rows = Array.from({ length: a.length + 1 }, (_v, i) => Array.from({ length: b.length + 1 }, (_w, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const row = rows[i] as number[]
      const above = rows[i - 1] as number[]
      row[j] = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((rows[i - 2] as number[])[j - 2] as number) + 1)
    }
  }
  return (rows[a.length] as number[])[b.length] as number
}
