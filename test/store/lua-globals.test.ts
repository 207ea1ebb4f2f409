// Each script carries only the library functions it names (src/store/lua-library.ts). One left
// out would be a global that is nil, an error Redis reports only when that line runs: here every
// script is compiled by Redis and its bytecode read for the globals it uses.
import t from 'tap'
import { composedScripts, functionLibraries } from '../../src/store/redis.js'
import { globalsOf } from '../helpers/lua-bytecode.js'
import { RedisServer } from '../helpers/redis-server.js'

/** What Redis's Lua gives every script. */
const REDIS_GLOBALS = new Set([
  'redis', 'cjson', 'cmsgpack', 'bit', 'struct', 'table', 'string', 'math', 'os',
  'KEYS', 'ARGV', 'tonumber', 'tostring', 'type', 'pairs', 'ipairs', 'next', 'select', 'unpack',
  'error', 'pcall', 'xpcall', 'assert', 'rawget', 'rawset', 'rawequal', 'setmetatable', 'getmetatable'
])

/** What a Redis Function gets (no os, and its keys and arguments as parameters, not KEYS and ARGV). */
const FUNCTION_GLOBALS = new Set([...REDIS_GLOBALS].filter((global) => !['os', 'KEYS', 'ARGV'].includes(global)))

// Hex, so the bytes come back through the client's string replies unchanged.
const DUMP = "local f = assert(loadstring(ARGV[1])) return (string.gsub(string.dump(f), '.', function (c) return string.format('%02x', string.byte(c)) end))"

t.test('every script Redis runs, in both sets (PUBLISH and a Cluster\'s SPUBLISH), uses no global but what Redis gives it and sets none', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const client = await server.client()
  t.teardown(() => client.close())
  const scripts = composedScripts()
  t.equal(scripts.length, 40, 'twenty scripts in each set (put\'s two functions are one script)')
  for (const { name, set, source } of scripts) {
    const hex = await client.sendCommand(['EVAL', DUMP, '0', source]) as string
    const { reads, writes } = globalsOf(Buffer.from(hex, 'hex'))
    t.same([...reads].filter((global) => !REDIS_GLOBALS.has(global)), [], `${name} (${set}) reads ${reads.size} globals, each one Redis gives`)
    t.same([...writes], [], `${name} (${set}) sets no global`)
  }
})

t.test('each function library, in both sets, loads (FUNCTION LOAD), reads no global but what Redis gives a function, and sets none', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const client = await server.client()
  t.teardown(() => client.close())
  const libraries = functionLibraries()
  t.equal(libraries.length, 2)
  for (const { set, library } of libraries) {
    // The first line (#!lua name=...) is FUNCTION LOAD's, not Lua.
    const chunk = library.text.slice(library.text.indexOf('\n') + 1)
    const { reads, writes } = globalsOf(Buffer.from(await client.sendCommand(['EVAL', DUMP, '0', chunk]) as string, 'hex'))
    t.same([...reads].filter((global) => !FUNCTION_GLOBALS.has(global)), [], `${library.name} (${set}) reads ${reads.size} globals, each one Redis gives a function`)
    t.same([...writes], [], `${library.name} (${set}) sets no global`)
    t.equal(await client.sendCommand(['FUNCTION', 'LOAD', library.text]), library.name, 'Redis loads it')
  }
})

t.test('the reader finds a library function a script calls but does not define, and a global it sets', async (t) => {
  const server = await RedisServer.start()
  t.teardown(() => server.stop())
  const client = await server.client()
  t.teardown(() => client.close())
  const source = 'local function inner () return helper(1) end\nlocal x = tonumber(ARGV[1])\ncounter = x\nreturn inner()'
  const { reads, writes } = globalsOf(Buffer.from(await client.sendCommand(['EVAL', DUMP, '0', source]) as string, 'hex'))
  t.same([...reads].sort(), ['ARGV', 'helper', 'tonumber'])
  t.same([...writes], ['counter'])
})
