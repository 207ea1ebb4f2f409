// ResearchEngine.prepare: what the engine would read on its first job (the English word ranks,
// the corpus's index) it reads before the process takes work (server.ts calls it before it
// listens), so that job does not hold every other request and job up while it reads them.
// Its own file: the word ranks are read once per process, and no other test here runs first.
import t from 'tap'
import { SHIPPED_CORPUS_DIR } from '../../src/config.js'
import { CorpusRetriever, type CorpusIndex } from '../../src/research/corpus-retriever.js'
import type { ResearchEngine } from '../../src/research/engine.js'
import { englishRanksLoaded } from '../../src/research/english-words.js'
import { PacedEngine } from '../../src/research/paced.js'
import { researchEngine } from '../helpers/research.js'

class CountingRetriever extends CorpusRetriever {
  loads = 0
  override async load (): Promise<CorpusIndex> {
    this.loads++
    return await super.load()
  }
}

t.test('prepare reads the English word ranks and the corpus\'s index before any job runs', async (t) => {
  const corpus = new CountingRetriever(SHIPPED_CORPUS_DIR)
  const engine = researchEngine({ corpus })
  t.notOk(englishRanksLoaded(), 'not read when the engine is built')
  await engine.prepare()
  t.ok(englishRanksLoaded(), 'read by prepare')
  t.equal(corpus.loads, 1, 'the corpus indexed by prepare')
  t.ok((await corpus.load()).documents > 0, 'the index holds the shipped corpus')
})

t.test('a corpus that cannot be read: prepare rejects (the server says so and starts), and the first job reads it again and reports it', async (t) => {
  const corpus = new CountingRetriever('/nonexistent/corpus')
  const engine = researchEngine({ corpus })
  await t.rejects(engine.prepare(), /nonexistent\/corpus/)
  const context = { signal: new AbortController().signal, progress: async () => {} }
  await t.rejects(engine.run({ query: 'what is a lease?', depth: 'quick' }, context), /corpus/i)
  t.equal(corpus.loads, 2, 'read by prepare, then again by the job')
})

t.test('a paced engine prepares the engine it paces', async (t) => {
  let prepared = 0
  const inner: ResearchEngine = { name: 'inner', run: async () => { throw new Error('not run') }, prepare: async () => { prepared++ } }
  await new PacedEngine(inner, 10).prepare()
  t.equal(prepared, 1)
  await t.resolves(new PacedEngine({ name: 'plain', run: inner.run }, 10).prepare(), 'one without prepare is fine')
})
