// Reads the names a compiled Lua 5.1 chunk (Redis's string.dump) reads or writes as globals.
// A global in a script is a name nothing defined locally: a library function left out of the
// script, or a typo, which Redis reports only when that line runs.

const GETGLOBAL = 5
const SETGLOBAL = 7

/** The globals a chunk (with every function inside it) reads and writes, by name. */
export function globalsOf (chunk: Buffer): { reads: Set<string>, writes: Set<string> } {
  if (chunk.subarray(0, 4).toString('latin1') !== '\x1bLua' || chunk[4] !== 0x51) throw new Error('not a Lua 5.1 chunk')
  const [intSize, sizeTSize, instructionSize, numberSize] = [chunk[7], chunk[8], chunk[9], chunk[10]]
  if (chunk[6] !== 1 || intSize !== 4 || sizeTSize !== 8 || instructionSize !== 4 || numberSize !== 8) throw new Error('a Lua build this reader does not know')
  let at = 12
  const byte = (): number => chunk[at++] as number
  const int = (): number => { const value = chunk.readInt32LE(at); at += 4; return value }
  const string = (): string | null => {
    const size = Number(chunk.readBigUInt64LE(at))
    at += 8
    if (size === 0) return null
    const text = chunk.subarray(at, at + size - 1).toString('latin1')
    at += size
    return text
  }
  const reads = new Set<string>()
  const writes = new Set<string>()
  const fn = (): void => {
    string()
    at += 4 + 4 + 4 // the lines it spans, then four bytes: upvalues, parameters, vararg, stack size
    const code = Array.from({ length: int() }, () => int() >>> 0)
    const constants = Array.from({ length: int() }, () => {
      const type = byte()
      if (type === 1) at += 1
      else if (type === 3) at += 8
      else if (type === 4) return string()
      return null
    })
    for (const instruction of code) {
      const op = instruction & 0x3f
      if (op !== GETGLOBAL && op !== SETGLOBAL) continue
      const name = constants[instruction >>> 14]
      if (typeof name === 'string') (op === GETGLOBAL ? reads : writes).add(name)
    }
    for (let protos = int(); protos > 0; protos--) fn()
    const lines = int()
    at += 4 * lines
    for (let locals = int(); locals > 0; locals--) { string(); at += 8 }
    for (let upvalues = int(); upvalues > 0; upvalues--) string()
  }
  fn()
  if (at !== chunk.length) throw new Error(`read ${at} of ${chunk.length} bytes`)
  return { reads, writes }
}
