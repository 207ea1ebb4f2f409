// The passages a job searches: a job's pages on top of the corpus's shared index, searched and
// counted together without indexing the corpus again; unknown words' forms remembered.
import t from 'tap'
import type { Passage } from '../../src/research/corpus.js'
import { PassageCollection } from '../../src/research/passage-collection.js'
import { stem } from '../../src/research/text.js'

const passage = (id: number, path: string, text: string, kind: Passage['kind'] = 'corpus'): Passage => ({ id, path, location: path, kind, title: path, heading: path, text })

t.test('pages on top of the corpus: one collection to search, weigh and read, the corpus untouched', async (t) => {
  const corpus = new PassageCollection([
    passage(0, 'aof.md', 'The appendfsync setting flushes the append-only file once per second.'),
    passage(1, 'ttl.md', 'A key with a TTL expires and is deleted by Redis.')
  ])
  const pages = new PassageCollection([passage(1_000_000, 'https://e.test/jitter', 'Jitter spreads retries out so that clients do not retry together.', 'web')], corpus)
  t.equal(corpus.passages.length, 2, 'the corpus collection is not changed')
  t.same(pages.passages.map((p) => p.id), [0, 1, 1_000_000])
  t.ok(pages.holds('jitter') && pages.holds('appendfsync') && !corpus.holds('jitter'))
  t.equal(pages.idf('expir'), Math.log(1 + 3 / 1), 'counts over every passage')
  t.same(pages.search('jitter retries', 5).map((h) => h.passage.id), [1_000_000])
  t.same(pages.search('appendfsync file', 5).map((h) => h.passage.id), [0], 'a corpus passage is found through the pages\' collection')
  t.equal(pages.sentencesOf(corpus.passages[0] as Passage)[0]?.text, 'The appendfsync setting flushes the append-only file once per second.')
  t.same(pages.formsOf('fsync'), ['appendfsync'], 'a word found inside a longer one')
  t.equal(pages.formsOf('fsync'), pages.formsOf('fsync'), 'and remembered')
  t.same(pages.formsOf('unjitter'), ['jitter'], 'a word without its "un"')
  t.equal(pages.wordFor('appendfsync'), 'appendfsync')
  t.same(pages.searchStems(['jitter'], 5).map((h) => h.passage.id), [1_000_000])
})

t.test('an abbreviation the sources spell out is a form of the hyphenated word it abbreviates: "sse" of "Server-sent events", "dlq" of "dead-letter queue"', async (t) => {
  const corpus = new PassageCollection([
    passage(0, 'events.md', 'Server-sent events stream updates over one long-lived response. A dead-letter queue keeps what failed.'),
    passage(1, 'writes.md', 'A compare-and-set write fails when the version moved. Jobs go to dead-letter the moment they fail. A half-open connection hangs. A point-in-time copy is kept. Some k8s-native tools exist.')
  ])
  t.same(corpus.formsOf(stem('sse')), [stem('server-sent')], 'the compound and the word after it')
  t.same(corpus.formsOf(stem('dlq')), [stem('dead-letter')])
  t.same(corpus.formsOf(stem('cas')), [stem('compare-and-set')], 'a compound alone, looked up by the stem a question gives ("ca")')
  t.same(corpus.formsOf(stem('casw')), [stem('compare-and-set')])
  t.same(corpus.formsOf(stem('hoc')), [stem('half-open')])
  t.same(corpus.formsOf(stem('sn')), [], 'two letters are too few to tell')
  t.same(corpus.formsOf(stem('dlt')), [], 'a stop word after the compound is not part of it ("dead-letter the")')
  t.same(corpus.formsOf(stem('snt')), [], 'no match starts inside a word ("s-native" of "k8s-native")')
  t.same(corpus.formsOf(stem('pit')), [], 'a common word is not an abbreviation')
  t.same(corpus.formsOf(stem('xyz')), [], 'no compound has these initials')
  const twice = new PassageCollection([passage(0, 'a.md', 'Server-sent events are one thing. Self-signed entries are another.')])
  t.same(twice.formsOf(stem('sse')), [], 'two compounds with the same initials: not guessed')
  const unsaid = new PassageCollection([passage(0, 'b.md', '| Server-sent events | a table row |\n\nTables are not sentences to quote.')])
  t.same(unsaid.formsOf(stem('sse')), [], 'a compound no sentence holds (a table\'s) is not one the sources say')
})
