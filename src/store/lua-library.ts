/**
 * A Lua library cut down to what one script uses. Redis runs a script's whole text on every call,
 * so each `local function` of a library prepended to it is defined again on each call, used or
 * not: with all of lib/job.lua that cost about 11 µs of Redis's CPU per call, a quarter of what
 * a progress write costs Redis. Redis Functions would define it once, but must then be loaded
 * on every node and again after a restart that lost them.
 *
 * The library is read as a list of top-level definitions, each a `local` at the start of a
 * line (with the comment lines above it) up to the next one; a definition is kept when the
 * script, or a definition kept, names it. Kept definitions stay in the library's order, so each
 * is still defined before what calls it. A name in a string or a trailing comment keeps a
 * definition it does not need: harmless, only a little longer.
 */
export function libraryFor (script: string, library: string): string {
  const definitions = definitionsOf(library)
  const byName = new Map(definitions.map((d) => [d.name, d]))
  const kept = new Set<Definition>()
  const pending = [...namesIn(script)]
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const definition = byName.get(name)
    if (definition === undefined || kept.has(definition)) continue
    kept.add(definition)
    pending.push(...definition.uses)
  }
  return definitions.filter((d) => kept.has(d)).map((d) => d.text).join('\n')
}

interface Definition {
  name: string
  text: string
  /** Names its code (comment lines left out) mentions. */
  uses: Set<string>
}

const DEFINITION = /^local (?:function )?([A-Za-z_]\w*)/

function definitionsOf (library: string): Definition[] {
  const lines = library.split('\n')
  const starts: Array<{ line: number, name: string }> = []
  lines.forEach((line, i) => {
    const name = DEFINITION.exec(line)?.[1]
    if (name === undefined) return
    // Its comment lines belong to it, not to the definition above.
    let first = i
    while (first > 0 && (lines[first - 1] as string).startsWith('--')) first--
    starts.push({ line: first, name })
  })
  return starts.map(({ line, name }, i) => {
    const text = lines.slice(line, starts[i + 1]?.line ?? lines.length).join('\n').trimEnd()
    return { name, text, uses: namesIn(text) }
  })
}

/** The identifiers of Lua code, full-line comments left out. */
function namesIn (code: string): Set<string> {
  const lines = code.split('\n').filter((line) => !line.trimStart().startsWith('--'))
  return new Set(lines.join('\n').match(/[A-Za-z_]\w*/g) ?? [])
}
