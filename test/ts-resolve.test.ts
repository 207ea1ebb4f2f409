import t from 'tap'

// The sources import each other as `./x.js`; test/helpers/ts-resolve.mjs finds `./x.ts` instead.
t.test('a source loaded with a query string after .ts (as tap\'s mockImport loads it) still finds the sources it imports', async (t) => {
  const url = new URL('../src/lifecycle.ts?fresh=1', import.meta.url)
  const lifecycle = await import(url.href) as typeof import('../src/lifecycle.js')
  t.equal(lifecycle.START_STEP, 'Starting research')
  const copies = await import(new URL('../src/store/final-copies.ts?fresh=2', import.meta.url).href) as typeof import('../src/store/final-copies.js')
  t.type(copies.FinalCopies, 'function', 'its `./x.js` imports resolved to the .ts sources')
})
