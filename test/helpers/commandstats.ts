/** Calls per command since the last CONFIG RESETSTAT, commands run inside scripts included. */
export function commandCalls (info: string): Map<string, number> {
  const calls = new Map<string, number>()
  for (const [, name, count] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(name as string, Number(count))
  return calls
}

/** Scripts run, however sent: FCALL (a Redis Function), EVALSHA, or EVAL. */
export function scriptCalls (info: string): number {
  const calls = commandCalls(info)
  return (calls.get('fcall') ?? 0) + (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0)
}
