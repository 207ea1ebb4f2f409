/** Calls per command since the last CONFIG RESETSTAT, commands run inside scripts included. */
export function commandCalls (info: string): Map<string, number> {
  const calls = new Map<string, number>()
  for (const [, name, count] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(name as string, Number(count))
  return calls
}
