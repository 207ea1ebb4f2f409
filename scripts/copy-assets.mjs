// tsc compiles only .ts files; the Lua scripts are read at run time next to the compiled store.
import { cpSync, rmSync } from 'node:fs'

const root = new URL('..', import.meta.url)
rmSync(new URL('dist/store/lua', root), { recursive: true, force: true })
cpSync(new URL('src/store/lua', root), new URL('dist/store/lua', root), { recursive: true })
