import { spawnSync } from 'node:child_process'
import t from 'tap'
import { SPAWNED_SERVER_ENV } from './helpers/app.js'

// A hot loop that V8 optimises with Maglev by default; --trace-opt names each tier it compiles to.
// Only the loop's own function counts: tap's coverage hook runs (and may be compiled) before the flag flips.
const hot = 'function hotLoop(n){let s=0;for(let i=0;i<n;i++)s+=i*i%7;return s};let t=0;for(let k=0;k<20000;k++)t+=hotLoop(1000)'
const maglevCompiles = (command: string[], env: NodeJS.ProcessEnv): number => {
  const [file, ...args] = [...command, process.execPath, '--trace-opt', '-e', hot]
  const run = spawnSync(file, args, { encoding: 'utf8', env })
  return run.stdout.split('\n').filter((line) => line.includes('<JSFunction hotLoop ') && line.includes('MAGLEV')).length
}

t.test('Node processes the tests start run with Maglev off (an exit while it compiles can deadlock: nodejs/node#54918)', async (t) => {
  // tap passes its NODE_OPTIONS on to every child, whatever env the child is given: `env -u` clears it.
  t.ok(maglevCompiles(['env', '-u', 'NODE_OPTIONS'], { PATH: process.env.PATH }) > 0, 'the loop does compile with Maglev where nothing turns it off')
  t.equal(maglevCompiles([], process.env), 0, 'a child that inherits the test\'s environment')
  t.equal(maglevCompiles(['env', '-u', 'NODE_OPTIONS', `NODE_OPTIONS=${SPAWNED_SERVER_ENV.NODE_OPTIONS}`], { PATH: process.env.PATH }), 0, 'a server spawned with SPAWNED_SERVER_ENV')
})
