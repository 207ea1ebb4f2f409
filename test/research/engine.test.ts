import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { CorpusRetriever } from '../../src/research/corpus-retriever.js'
import { type DocumentPassage, type Passage, splitDocument } from '../../src/research/corpus.js'
import { PermanentError, type Report, type RunContext } from '../../src/research/engine.js'
import { findingsFor, namesStatusCode, statesSpanOfTime, thingsNamed } from '../../src/research/evidence.js'
import { type QuestionPart, analyseQuestion, contentTerms, pronounStandsAlone } from '../../src/research/question.js'
import { DEPTH_PLANS } from '../../src/research/rounds.js'
import { keyTerms, sentences, similarity, stem, tokenize, truncate } from '../../src/research/text.js'
import { PassageCollection, stemsOf } from '../../src/research/passage-collection.js'
import { resolveOptions } from '../../src/schemas/options.js'
import { repeatedSentences } from '../helpers/evaluation.js'
import { researchEngine } from '../helpers/research.js'

const engine = researchEngine()
t.teardown(() => engine.close())

function recorder (signal = new AbortController().signal): RunContext & { steps: Array<[number, string]> } {
  const steps: Array<[number, string]> = []
  return { signal, steps, progress: async (percent, step) => { steps.push([percent, step]) } }
}

async function research (query: string, depth: 'quick' | 'standard' | 'deep' = 'standard', context = recorder()): Promise<Report> {
  return await engine.run({ query, depth, options: resolveOptions({ depth }) }, context)
}

/** Every [n] in the text points at a listed source, and every source is cited. */
function citationsHold (t: Test, report: Report): void {
  const cited = new Set([...(report.markdown ?? '').matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])))
  const ids = new Set(report.sources.map((s) => s.id))
  t.ok([...cited].every((n) => ids.has(n)), `citations ${[...cited].join(',')} all point at sources`)
  t.ok([...ids].every((n) => cited.has(n)), 'every source is cited')
  t.same(report.sources.map((s) => s.id), report.sources.map((_s, i) => i + 1), 'sources are numbered 1..n')
}

const documents = (report: Report): string[] => report.sources.map((s) => s.path_or_url.replace(/^corpus\//, ''))

t.test('the summary opens with the sentence that answers the question, cited', async (t) => {
  const report = await research('What does appendfsync everysec lose in a crash?')
  t.match(report.summary, /^[^.]*everysec[^.]*one second of writes/i, 'the first sentence states what is lost: about one second of writes')
  t.same(documents(report), ['redis-persistence.md'])
  t.match(report.answer, { status: 'answered', parts: [{ question: 'What does appendfsync everysec lose in a crash', answered: true, sources: [1] }] })
  t.match(report.markdown, /^# Research: What does appendfsync[^]*\n## Summary\n\n[^]*\n## Sources\n\n1\. \*\*Redis persistence/)
  t.ok(report.sections.every((s) => /\[\d+\]/.test(s.body)), 'every section carries citations')
  t.equal(report.stats.documents_searched, 14)
  citationsHold(t, report)
})

t.test('the README\'s example question cites only the documents about it (it cited tls-for-redis.md)', async (t) => {
  for (const depth of ['quick', 'standard', 'deep'] as const) {
    const report = await research('How does Redis AOF persistence protect queued jobs?', depth)
    t.same(documents(report), ['redis-persistence.md'], `${depth}: only the persistence document`)
    t.match(report.summary, /AOF|append/, `${depth}: the summary is about the append-only file`)
  }
})

t.test('sections say more from the documents the answer rests on, never from another that shares a word (deep cited retries-and-backoff.md for the breaker)', async (t) => {
  for (const depth of ['standard', 'deep'] as const) {
    const report = await research('Once a circuit breaker has tripped, how does it figure out that the downstream service is healthy again?', depth)
    t.same(documents(report), ['circuit-breakers.md'], `${depth}: the breaker document alone`)
    t.ok(report.sections.length > 0, `${depth}: with sections`)
    citationsHold(t, report)
  }
})

t.test('a part only documents off the question\'s topic speak to is said to be unanswered, not answered from them (BM25 cited uuids.md and three more)', async (t) => {
  const report = await research('In BM25, what do the k1 and b knobs actually do, and what values do people usually use?', 'deep')
  t.same(documents(report), ['bm25-ranking.md'])
  t.match(report.answer, { status: 'partial', parts: [{ answered: true, sources: [1] }, { question: 'What values do people usually use', answered: false, sources: [] }] })
  t.match(report.summary, /k1[^]*The sources searched do not answer "What values do people usually use\?"\.$/, 'said as not answered, not as cut by max_sources')
  citationsHold(t, report)
})

t.test('no sentence appears twice: not the summary in a section, not a section in another', async (t) => {
  for (const query of ['How does Redis AOF persistence protect queued jobs?', 'Why do retries need jitter and how much backoff should I use?', 'What does a lease do when a worker crashes, and how do I make duplicate runs harmless?']) {
    for (const depth of ['quick', 'deep'] as const) {
      const report = await research(query, depth)
      t.same(repeatedSentences(report), [], `${depth}: ${query}`)
      const summarySentences = report.summary.split(/(?<=\]) /)
      for (const section of report.sections) t.notOk(summarySentences.some((s) => s.length > 20 && section.body.includes(s.replace(/ \[\d+\]$/, ''))), `"${section.heading}" repeats no summary sentence`)
    }
  }
})

t.test('a question of several parts gets an answer for each, and a section per part, not per document heading', async (t) => {
  const report = await research('What does a lease do when a worker crashes, and how do I make duplicate runs harmless?')
  t.match(report.answer, { status: 'answered', parts: [{ question: 'What does a lease do when a worker crashes', answered: true }, { question: 'How do I make duplicate runs harmless', answered: true }] })
  t.match(report.summary, /lease runs out/)
  t.match(report.summary, /tolerate repeats|idempotent/)
  t.equal(report.sections[0]?.heading, 'What does a lease do when a worker crashes?', 'sections are the parts of the question')
  t.notOk(report.sections.some((s) => /^(Leases and visibility timeouts|Delivery guarantees|Orphaned jobs)$/.test(s.heading)), 'no section is a document\'s own heading')
})

t.test('a long question is answered in at most five parts, each asked once', async (t) => {
  const question = 'How does the Redis append-only file protect jobs, and why do retries need jitter? '.repeat(20) + 'What is a lease? What is a circuit breaker? What is BM25? What is a UUID?'
  const report = await research(question.slice(0, 2000), 'deep')
  t.same(report.answer?.parts.map((p) => p.question), ['How does the Redis append-only file protect jobs', 'Why do retries need jitter', 'What is a lease', 'What is a circuit breaker', 'What is BM25'])
  t.same(repeatedSentences(report), [])
  for (const odd of ['???', 'the of and', 'https://example.com/page', 'Wie funktioniert Redis AOF?', '为什么需要重试抖动？']) {
    const answer = (await research(odd, 'deep')).answer
    t.equal(answer?.status, 'not_found', `"${odd}": not found, without an error`)
  }
})

t.test('a question the sources do not answer ends "not found": short, what was searched, nothing cited', async (t) => {
  for (const query of ['How do I bake sourdough bread?', 'Who won the football world cup in 2022?', 'What is a safe dose of ibuprofen for a child?', 'How do I configure Kafka consumer groups?']) {
    for (const depth of ['quick', 'deep'] as const) {
      const report = await research(query, depth)
      t.match(report.answer, { status: 'not_found' }, `${depth}: ${query}`)
      t.same(report.sources, [], 'nothing cited')
      t.same(report.sections, [], 'no sections of unrelated text')
      t.match(report.summary, /^No answer found in the sources searched: the corpus \(14 documents, \d+ passages\), with \d+ searche?s? in \d+ rounds?\./)
      t.ok(report.summary.split(/\s+/).length < 60, `${report.summary.split(/\s+/).length} words: no padding`)
      t.notMatch(report.markdown, /\[\d+\]|## Sources/)
      t.match(report.searched, { sources: ['corpus'], documents: 14 })
    }
  }
})

t.test('a question asking how much or how many is answered only by a quantity of what it asks about', async (t) => {
  const slots = await research('How many hash slots does Redis Cluster have?')
  t.match(slots.answer, { status: 'not_found' }, 'a passage on Redis Cluster slots that counts nothing is no answer')
  const port = await research('What port does Redis listen on by default?')
  t.match(port.answer, { status: 'not_found' }, 'a sentence with "IPv6" in it is not a port number')
  const kept = await research('How long are idempotency keys kept?')
  t.match(kept.summary, /^Keys are kept for a limited time, commonly 24 hours/, 'how long: a span of time')
})

t.test('how long is also answered relative to another span: "longer than any client\'s retry window" (the summary stopped at "24 hours")', async (t) => {
  const report = await research('how long do idempotency keys need to stick around?', 'quick')
  t.match(report.summary, /24 hours/, 'the usual span')
  t.match(report.summary, /longer than any client's retry window/, 'and what it must outlast')
})

t.test('"bigger" is how people say a file grows: "will my AOF file keep getting bigger forever?" is answered by the rewrite (it opened on the manifest)', async (t) => {
  const report = await research('will my redis AOF file just keep getting bigger forever?', 'quick')
  t.match(report.summary, /^The AOF grows with every command, so Redis rewrites it in the background/)
})

t.test('"in practice", "in general" say how generally it is asked, not what about: "which one should I pick in practice?" is about the jitter named before it (it cited the UUIDs for "practically")', async (t) => {
  const report = await research('Exponential backoff comes with a few kinds of jitter. Which one should I pick in practice?', 'quick')
  t.same(documents(report), ['retries-and-backoff.md'])
  t.match(report.summary, /jitter/)
})

t.test('a which-is-best question prefers the sentence that says what does best ("the fewest calls"), not one that only describes a kind', async (t) => {
  const report = await research('Backoff libraries offer full, equal and decorrelated jitter. Which works best?', 'quick')
  t.match(report.summary, /^Studies of these strategies found full jitter to finish the work with the fewest calls/)
})

t.test('"switch on" is how people say "enable": "what should we switch on?" after an RDB-only crash is answered by enabling the AOF (it said "not answered")', async (t) => {
  const report = await research('Our Redis only writes RDB snapshots and a crash lost an hour of jobs. What should we switch on?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /Enable AOF with `appendfsync everysec`/)
})

t.test('"proper" says what kind of answer is wanted, as "right" does: "what\'s the proper fix?" is about the stuck jobs told before it (it said "not answered")', async (t) => {
  const report = await research('Since our last deploy some jobs have sat in \'processing\' for hours and no worker takes them. Why, and what\'s the proper fix?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /A reaper that looks for expired leases/)
})

t.test('"at the same instant" is "at the same time": clients retrying in lockstep are answered by the synchronized waves, not by the polling document (it cited async-http-apis.md)', async (t) => {
  const report = await research('Once the API recovered, all our clients retried at the very same instant and knocked it over again. Why does that happen?', 'quick')
  t.match(report.summary, /they retry at the same time too, in synchronized waves/)
  t.same(documents(report), ['retries-and-backoff.md'])
})

t.test('a lone question\'s summary takes a sentence of another document only when it is half as good an answer: a dropped connection and a server do not make the retries document one (it was cited third)', async (t) => {
  const report = await research('Mobile users of our SSE progress stream drop the connection when their network is flaky. How can the server pick up where it left off?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.same(documents(report), ['async-http-apis.md'])
})

t.test('another document\'s sentence joins an answer only when it adds a word the question asks about: the TTL a Lua script writes does not bring the concurrency document into a question about SET clearing a TTL (it was cited second)', async (t) => {
  for (const depth of ['quick', 'deep'] as const) {
    const report = await research('I gave a key a TTL, but after my code updated the value with a normal SET it never expires anymore. What\'s going on?', depth)
    t.match(report.summary, /A plain `SET` without `EX` or `KEEPTTL` clears the TTL/, depth)
    t.same(documents(report), ['redis-expiration.md'], depth)
  }
  const limiter = await research('Our limiter keeps its counters in Redis. What are our options if Redis goes down, and which one do most public APIs go with?', 'deep')
  t.same(documents(limiter), ['rate-limiting.md'], 'the TLS document\'s "safer option" adds only "option"')
  t.match(limiter.summary, /failing open \(allowing requests\) and failing closed/)
})

t.test('a later part whose pronoun stands alone ("how do I prevent it", "when it\'s done") is answered from the documents the answer so far rests on: the lease and UUID documents\' "prevents" and the idempotency key\'s "client ... POST" were cited', async (t) => {
  for (const depth of ['quick', 'deep'] as const) {
    const lost = await research('Two API replicas read the same record, each tweaks it and saves, and one of the changes just disappears. What is this called, and how do I prevent it?', depth)
    t.same(documents(lost), ['optimistic-concurrency.md'], depth)
    t.match(lost.summary, /A writer reads the record with its version/, `${depth}: the prevention is in the summary`)
    const report = await research('Generating a report takes about five minutes. What should my POST endpoint answer straight away, and how does the client find out when it\'s done?', depth)
    t.same(documents(report), ['async-http-apis.md'], depth)
    t.match(report.summary, /The status resource reports the state/, depth)
  }
  // "Those status checks" names its own thing: it may be answered by another document.
  const polling = await research('Clients polling for job status are eating the whole rate limit, so nobody can create new jobs anymore. How do I fix the limits, and how do I make those status checks cheaper for the server?', 'quick')
  t.ok(documents(polling).includes('async-http-apis.md'), 'the cheap status reads are found')
  t.match(polling.summary, /Servers should make status reads cheap/)
})

t.test('a part whose best answer was given for an earlier part (cited again) still adds two new sentences: "how do I prevent it" reaches the compare-and-set (it stopped at the version read)', async (t) => {
  const report = await research('Two API replicas read the same record, each tweaks it and saves, and one of the changes just disappears. What is this called, and how do I prevent it?', 'quick')
  t.match(report.summary, /A writer reads the record with its version.*the compare-and-set fails/s)
  t.equal((report.summary.match(/A lost update happens when/g) ?? []).length, 1, 'the sentence given twice is cited, not repeated')
})

t.test('deep reads further into the documents it answers from: its sections take sentences holding a fifth of a part\'s words, not a quarter, so "what\'s the usual fix" gets one (deep had none, and never said jitter)', async (t) => {
  const query = 'After a short outage our API came back up and immediately fell over again, because every client retried at exactly the same moments. Why does that happen and what\'s the usual fix?'
  const deep = await research(query, 'deep')
  const fix = deep.sections.find((s) => s.heading === 'What\'s the usual fix?')
  t.match(fix?.body, /full jitter/)
  t.same(documents(deep), ['retries-and-backoff.md'])
  const standard = await research(query, 'standard')
  t.notOk(standard.sections.some((s) => s.heading === 'What\'s the usual fix?'), 'standard keeps the quarter')
})

t.test('a pronoun stands alone when it is what the part asks about, after no name and before everyday words only', async (t) => {
  const second = (question: string): QuestionPart => analyseQuestion(question).parts[1] as QuestionPart
  t.ok(pronounStandsAlone(second('What is a lost update, and how do I prevent it?')))
  t.ok(pronounStandsAlone(second('What does the POST answer, and how does the client find out when it\'s done?')))
  t.ok(pronounStandsAlone(second('Which jobs fail, and can I replay them?')))
  t.ok(pronounStandsAlone(second('Our jobs get duplicated. Why, and how do I stop that?')), '"that" at the end')
  t.notOk(pronounStandsAlone(second('Why are polls costly, and how do I make those status checks cheaper?')), '"those" before a thing the part names')
  t.notOk(pronounStandsAlone(second('What is maxmemory, and how does Redis pick keys when it\'s full?')), 'a name before it: "it" is Redis')
  t.notOk(pronounStandsAlone(second('What is a lease, and is it ok to renew one early?')), 'a dummy "it"')
  t.notOk(pronounStandsAlone(analyseQuestion('How do I prevent it?').parts[0] as QuestionPart), 'a lone part points at nothing')
})

t.test('another document\'s sentence still joins an answer when it adds a word the part asks about: the abort signal of graceful shutdown beside the job queue\'s SIGTERM', async (t) => {
  const report = await research('When we scale the worker pool down, the jobs those workers were holding just sit there until some timeout. What should a worker stop doing when it gets the shutdown signal, and what should it do with the jobs it still holds?', 'quick')
  t.same(documents(report), ['job-queues.md', 'graceful-shutdown.md'])
  t.match(report.summary, /A worker that receives SIGTERM should stop taking new jobs.*An abort signal lets long-running work stop/s)
})

t.test('"paging someone" asks about alerts, and "for a service that processes jobs" says where the question applies: the observability document answers which conditions to page on (it answered from the job-queue document)', async (t) => {
  const [part] = analyseQuestion('For a service that processes background jobs, which conditions are actually worth paging someone about?').parts as [QuestionPart]
  t.ok(part.terms.includes(stem('alert')), 'paging someone is an alert')
  t.notOk(part.terms.includes(stem('background')), 'the scope is context...')
  t.ok(part.context.includes(stem('background')), '...not dropped')
  t.notOk(analyseQuestion('Why does the second page of results load slowly?').terms.includes(stem('alert')), 'a page of results is no alert')
  for (const depth of ['quick', 'deep'] as const) {
    const report = await research('For a service that processes background jobs, which conditions are actually worth paging someone about?', depth)
    t.same(documents(report), ['observability.md'], depth)
    t.match(report.markdown, /Alert on symptoms users feel/, depth)
  }
})

t.test('"which conditions" asks for instances of a kind, and a sentence that lists them after a colon gives them: the summary names the conditions to page on (it opened on "each alert should say what to check first" alone)', async (t) => {
  for (const depth of ['quick', 'deep'] as const) {
    const report = await research('For a service that processes background jobs, which conditions are actually worth paging someone about?', depth)
    t.match(report.summary, /Alert on symptoms users feel, not on every cause: a service running in fallback mode/, depth)
  }
  const options = await research('Our rate limiter keeps counters in Redis. What are the options if Redis dies?', 'quick')
  t.match(options.summary, /failing open \(allowing requests\) and failing closed/, 'a kind asked with "what" still finds its instances')
})

t.test('two sentences of other documents that add the same word are one too many: the second adds nothing the answer lacks by then (both were taken)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'corpus-'))
  writeFileSync(join(dir, 'a.md'), '# Flurbo valves\n\nThe flurbo valve gasket holds grommets slowly through its side port. Each valve has one port.\n')
  writeFileSync(join(dir, 'b.md'), '# Gasket pressure\n\nGrommet pressure in a flurbo valve rises with heat until the valve vents.\n')
  writeFileSync(join(dir, 'c.md'), '# Gasket temperature\n\nWhen cold, the grommet pressure of a flurbo valve drops below one bar. The gauge needs calibration.\n')
  const valves = researchEngine({ corpus: new CorpusRetriever(dir) })
  t.teardown(() => valves.close())
  const report = await valves.run({ query: 'How does the flurbo valve gasket hold grommet pressure?', depth: 'quick', options: resolveOptions({ depth: 'quick' }) }, recorder())
  t.match(report.summary, /^The flurbo valve gasket holds grommets/, 'the best answer lacks "pressure"')
  t.match(report.summary, /Grommet pressure in a flurbo valve rises/, 'the next document\'s sentence adds it')
  t.same(documents(report), ['a.md', 'b.md'], 'the third document\'s sentence adds nothing more')
})

t.test('"for a service that ..." is where a question applies: context to every part and searched with the question, yet a product named there is still asked about', async (t) => {
  const question = analyseQuestion('For a service that processes background jobs, which conditions are worth paging someone about, and how fast should the alert fire?')
  t.ok(question.terms.includes(stem('background')), 'searched with the question')
  for (const part of question.parts) t.ok(part.context.includes(stem('background')) && !part.terms.includes(stem('background')), `context of "${part.text}"`)
  const nginx = await research('For an nginx proxy in front of the api, what timeout should I set?', 'quick')
  t.match(nginx.answer, { status: 'not_found' }, 'nginx is named where it applies, and no source holds it')
  const crash = analyseQuestion('In a crash, how much do I lose?').parts[0] as QuestionPart
  t.ok(crash.terms.includes(stem('crash')), 'a condition is what such a part asks about, not where it applies')
})

t.test('paging someone is an alert; paging through results is not', async (t) => {
  t.ok(analyseQuestion('Which errors should page the on call engineer?').terms.includes(stem('alert')))
  t.ok(analyseQuestion('When should we page whoever is on call?').terms.includes(stem('alert')))
  t.ok(analyseQuestion('Which errors should page the on call engineer?').terms.includes(stem('page')), 'the page stays beside the alert')
  t.notOk(analyseQuestion('GET /jobs returns 10k rows, how do I page them?').terms.includes(stem('alert')))
  t.notOk(analyseQuestion('Why do the web pages people visit load slowly?').terms.includes(stem('alert')))
})

t.test('a trade-off is answered by what each side costs and gives, and "pros and cons" only asks (it said the sources do not answer "What are the pros and cons?")', async (t) => {
  const report = await research('Should my clients poll the job or listen to server-sent events? What are the pros and cons?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /Polling is simple and works through every proxy and firewall/)
  t.match(report.summary, /Its cost is wasted requests/)
})

t.test('"what\'s this called?" is answered first by the sentence that names the thing ("A lost update happens when..."), not one that only speaks of it', async (t) => {
  const report = await research('Two requests read a record, both change it and save it, and the first change is gone. What\'s this problem called?', 'quick')
  t.match(report.summary, /^A lost update happens when two writers read the same record/)
})

t.test('ordinary "which" nouns, errors and hyphenated spellings still find their answers (each ended "not found" or lost its answer under rules a review caught)', async (t) => {
  for (const query of ['Which backoff formula do most clients use?', 'Which alternative to polling should we use?', 'How should a client re-try with back-off?']) {
    const report = await research(query, 'standard')
    t.match(report.answer, { status: 'answered' }, query)
  }
  const errors = await research('Which errors should a client not retry?', 'standard')
  t.match(errors.summary, /Do not retry validation errors, authentication failures or 404 answers/, '"errors" is what it asks about, not a kind of thing')
})

t.test('"what are the options" is answered by the options themselves, which need not say "option" (it said "not found", where only the TLS document says "the safer option")', async (t) => {
  const report = await research('Our rate limiter keeps counters in Redis. What are the options if Redis dies?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.same(documents(report), ['rate-limiting.md'])
  t.match(report.summary, /failing open \(allowing requests\) and failing closed/)
})

t.test('a hyphenated word whose parts say nothing is a term of its own: "at-most-once" is searched, not lost to "at", "most", "once" (the summary had no word on it)', async (t) => {
  t.ok(keyTerms('at-most-once or at-least-once?').includes(stem('at-most-once')))
  t.notOk(keyTerms('read-modify-write').includes(stem('read-modify-write')), 'a word whose parts say it counts by them')
  const report = await research('at-most-once or at-least-once for my job queue? what actually happens to a job when the worker crashes in each case', 'quick')
  t.match(report.summary, /At-most-once delivery removes a job from the queue before it runs; a crash loses it/)
  const rerun = await research('Should a retry re-run the whole job or pick up from a check-point?', 'quick')
  t.match(rerun.answer, { status: 'answered' }, 'and one no source holds whole is no unknown name: its parts are held ("re-run" made it "not found")')
})

t.test('"what\'s happening?" after what went wrong asks what causes it, as a why does: the cause comes first (it opened on what expiry is for)', async (t) => {
  const report = await research('I give my cache keys a TTL when I create them, but after my code overwrites one with a plain SET it stays forever. What\'s happening?', 'quick')
  t.match(report.summary, /^A plain `SET` without `EX` or `KEEPTTL` clears the TTL/)
  t.match(analyseQuestion('The key never expires. What is going on?').parts, [{ type: 'why' }])
})

t.test('"notice" is how people say "monitor": a breaker on its fallback for a week is answered by what makes it observable (it said "not found")', async (t) => {
  const report = await research('Our breaker kept answering from its fallback for a week and nobody noticed. How would we notice sooner?', 'quick')
  t.match(report.summary, /^Health endpoints should report degraded mode, and metrics should count how often the fallback served requests/)
})

t.test('a short sentence is still a sentence: "Averages hide outliers." can answer (it was dropped with list items and link texts under 25 characters)', async (t) => {
  const report = await research('What\'s wrong with alerting on the average latency?', 'quick')
  t.match(report.summary, /Averages hide outliers\./)
  const cancel = await research('Is it fine if cancelling a job just hides it from the user\'s job list?', 'quick')
  t.same(documents(cancel), ['async-http-apis.md'], 'and a document that now holds "hide" and "users" is not cited for a sentence at two thirds of the answer\'s score')
})

t.test('a caveat is a sentence that says one: "append-only" holds no "only" (a deep report gave the AOF\'s description as a caveat)', async (t) => {
  const report = await research('We only run RDB snapshots on the Redis behind our queue. It crashed and we lost minutes of jobs. Why so much, and what should we switch on?', 'deep')
  const caveats = report.sections.find((s) => s.heading === 'Caveats')?.body ?? ''
  t.notMatch(caveats, /append-only file and replays it/)
})

t.test('a word no source uses is searched in the words the sources use: "quota" finds the rate limits (quick cited only the polling document)', async (t) => {
  const report = await research('What status code should my API send back when a client blows through its request quota?', 'quick')
  t.ok(documents(report).includes('rate-limiting.md'), `cites the rate limits (${documents(report).join(', ')})`)
  t.match(report.summary, /^When a client exceeds its limit the server answers 429 Too Many Requests/, 'and the summary opens with the code: a sentence naming one holds the "status code" asked for')
})

t.test('a question asking what a server should send back is answered with a status code, not a sentence about the request', async (t) => {
  const quota = await research('Which HTTP code do I return when a user goes over their quota?', 'quick')
  t.match(quota.summary, /^When a client exceeds its limit the server answers 429/, 'the code for going over a limit, first')
  const accepted = await research('Building the export takes a few minutes. What should the server respond with immediately, and where does the client check on it?', 'quick')
  t.match(accepted.answer, { status: 'answered' })
  t.match(accepted.summary, /^The server answers the creating request with status 202 Accepted/, '"immediately" says when, not what: the part is still answered')
})

t.test('two words side by side name one thing ("distributed tracing"): a passage on it answers, where two separate things were asked of it (it said "not found")', async (t) => {
  const report = await research('How can I see the whole history of one job without setting up distributed tracing?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /^One log line per state change of a job gives a timeline for each job without tracing infrastructure/)
  t.same(documents(report), ['observability.md'])
})

t.test('a part that says nothing itself ("Why does that happen?") is answered from what the question tells, with no word of its other parts needed (it said "not answered", then quoted the answer)', async (t) => {
  const report = await research('Right after our outage every client retried at exactly the same moments and the API fell over again. Why does that happen, and what is the fix?', 'quick')
  t.match(report.answer, { status: 'answered', parts: [{ question: 'Why does that happen', answered: true }, { answered: true }] })
  t.match(report.summary, /^Retrying carelessly turns a short outage into a long one, because every client hammers the recovering service at the same moment/)
  t.notMatch(report.summary, /do not answer/)
})

t.test('"is it safe to..., so I can..." asks whether it is safe, not about the "it" or the reason: the sources\' answer is found (it said "not found")', async (t) => {
  const report = await research('Is it safe to print the Redis connection URL when the app starts, so I can troubleshoot settings?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /It must never be logged: logs are widely readable and long-lived/)
  t.same(documents(report), ['tls-for-redis.md'])
})

t.test('an "it" inside a question of one part points at that part, not back at a rest there is none of: its rarer words are not taken for unknown names (it said "not found")', async (t) => {
  const report = await research('Should the timeout on an outbound call be longer or shorter than the one on the request that started it?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /^Every remote call needs its own deadline, shorter than the deadline of the request that makes it/)
  t.equal((analyseQuestion('Why does it crash?').parts[0] as QuestionPart).refersBack, false, 'one part, nothing said before it')
  t.equal((analyseQuestion('My worker died. Why does it crash?').parts[0] as QuestionPart).refersBack, true, 'a statement before it')
})

t.test('"OK" in capitals is an everyday word, not a name the sources must hold (it said "not found")', async (t) => {
  const report = await research('Is it OK to write the whole REDIS_URL to our logs when the service boots?', 'quick')
  t.match(report.answer, { status: 'answered' })
  t.match(report.summary, /It must never be logged/)
  t.same((analyseQuestion('Is it OK to use TTL here?').parts[0] as QuestionPart).names, ['ttl'], 'TTL is a name; OK is not')
})

t.test('a yes-or-no question is answered first by the sentence that gives the verdict ("must never", "not"), not by one that shares more of its words', async (t) => {
  const logged = await research('is it ok to print the full redis connection url at startup so I can debug config issues?', 'quick')
  t.match(logged.summary, /^It must never be logged: logs are widely readable and long-lived/)
  const fork = await research('Does Redis freeze and stop answering clients while it\'s writing an RDB snapshot?', 'quick')
  t.match(fork.summary, /^Redis forks a child process that writes the snapshot while the parent keeps serving clients/)
})

t.test('a why question prefers a sentence that says what causes what ("retries multiply"), not only one with "because"', async (t) => {
  const report = await research('During an incident one user request turned into dozens of calls to our database. Why does that happen with retries, and how can I put a cap on it?', 'quick')
  t.match(report.summary, /In a deep call chain, retries multiply: three retries at each of three layers turn one request into 64 calls/)
})

t.test('the first part of a question has nothing before it to point back at: its "its" is its own (the idempotency key\'s value was answered by a jitter sentence that held a word of the second part)', async (t) => {
  const report = await research('What kind of value should a client generate for its idempotency key, and why won\'t two clients accidentally pick the same one?', 'quick')
  t.match(report.summary, /^The client generates a unique key, typically a UUID/, '"what kind of" is answered by the sentence that gives one ("typically a UUID")')
  t.notMatch(report.summary.split('. ')[0], /jitter/)
  const [first, second] = analyseQuestion('What should a client put in its key, and why does it matter?').parts as [QuestionPart, QuestionPart]
  t.equal(first.refersBack, false)
  t.equal(second.refersBack, true)
})

t.test('beside a question, a sentence that opens on "when" and ends in a full stop tells what happens; it asks nothing', async (t) => {
  const question = analyseQuestion('When a job gets retried, its progress jumps back down. What\'s the right way to combine the stored progress with a new update?')
  t.equal(question.parts.length, 1)
  t.match(question.parts[0], { text: /^What's the right way/, refersBack: false })
  t.ok(question.parts[0]?.context.includes(stem('retried')), 'what it tells is context to the question')
  t.equal(analyseQuestion('When does a key expire.').parts.length, 1, 'alone, it is still the question')
  t.equal(analyseQuestion('When should I retry. And how often?').parts.length, 2, 'a question typed with a full stop is still asked')
  t.equal(analyseQuestion('Where are failed jobs kept. Can I replay them?').parts.length, 2)
  t.match(analyseQuestion('When a job is retried its progress jumps back to zero. Why?').parts, [{ type: 'why', about: /^When a job is retried/ }], 'typed without the comma, still what happens')
  t.ok(analyseQuestion('When I retry, should I reuse the idempotency key. Also how long are keys kept?').parts.some((p) => p.text === 'Should I reuse the idempotency key'), 'a question after the clause is still asked')
})

t.test('"POST" is how people say "the creating request": what a POST endpoint answers at once is the 202 (the summary opened on health endpoints)', async (t) => {
  const report = await research('Generating a report takes about five minutes. What should my POST endpoint answer straight away, and how does the client find out when it\'s done?', 'quick')
  t.match(report.summary, /^The server answers the creating request with status 202 Accepted/)
  t.notOk(documents(report).includes('circuit-breakers.md'), `no health endpoints (${documents(report).join(', ')})`)
})

t.test('a choice between two gets a sentence about each, also when the best answer names one in passing (at-least-once was "covered" by a sentence on exactly-once)', async (t) => {
  const report = await research('at-most-once or at-least-once for my job queue? what actually happens to a job when the worker crashes in each case', 'quick')
  t.match(report.summary, /At-most-once delivery removes a job from the queue before it runs; a crash loses it/)
  t.match(report.summary, /At-least-once delivery removes it only after it finished; a crash means it runs again/)
})

t.test('a question about the code a server sends back, answered with one, takes the rest of its summary from that code\'s document (the quota answer went on with "202 Accepted" and "status reads")', async (t) => {
  const report = await research('What status code should my API send back when a client blows through its request quota?', 'quick')
  t.match(report.summary, /^When a client exceeds its limit the server answers 429 Too Many Requests/)
  t.same(documents(report), ['rate-limiting.md'])
})

t.test('a question after the version of a named thing is answered only by a sentence that names a version: the sources never give a TLS version (it answered with "Managed Redis services often require TLS")', async (t) => {
  const tls = await research('Which TLS version and cipher suites do managed Redis providers require for rediss:// connections?', 'quick')
  t.match(tls.answer, { status: 'not_found' })
  t.same(tls.sources, [])
  const uuid = await research('Which UUID version should the client send as the request id?', 'quick')
  t.match(uuid.summary, /^Version 7 UUIDs start with a millisecond timestamp/)
  const header = await research('Which API version header should clients send?', 'quick')
  t.match(header.answer, { status: 'answered' }, 'a version header is no version asked for')
  const record = await research('With optimistic concurrency, which version does a writer check before it saves a record?', 'quick')
  t.match(record.summary, /^A writer reads the record with its version/, 'a record\'s version is no release: no number needed')
})

t.test('how many things a part names: two words side by side are one, a comma parts them, and three in a row are two', async (t) => {
  const things = (text: string, words: string[]): number => {
    const part = analyseQuestion(text).parts[0] as QuestionPart
    return thingsNamed(words.map((word) => ({ stem: stem(word), alternatives: [], weight: 1, own: true, everyday: false, known: true })), part)
  }
  t.equal(things('How can I see a job without distributed tracing?', ['distributed', 'tracing']), 1, '"distributed tracing" is one thing')
  t.equal(things('Should I use AOF, RDB, or neither?', ['aof', 'rdb']), 2, '"AOF, RDB": a comma between them')
  t.equal(things('Can I print the redis connection url?', ['redis', 'connection', 'url']), 2, 'three in a row: a pair and one more, not one thing')
  t.equal(things('Is https://example.com/page safe?', ['https', 'example']), 2, 'the pieces of a URL are not words side by side')
})

t.test('what a question asks for: a status code when it asks what a server sends back; "straight away" is when, not what', async (t) => {
  const parts = (text: string): Array<Pick<QuestionPart, 'terms' | 'asksStatus'>> => analyseQuestion(text).parts.map(({ terms, asksStatus }) => ({ terms, asksStatus }))
  t.match(parts('What status code means the client is rate limited?'), [{ asksStatus: true }])
  t.match(parts('What should my POST endpoint answer straight away?'), [{ asksStatus: true }])
  t.same(parts('What should my POST endpoint answer straight away?')[0]?.terms, ['post', 'endpoint', 'answer'], '"straight away" is no term')
  t.match(parts('What does the TTL command give back for a key with no expiry?'), [{ asksStatus: false }], 'a Redis command\'s reply is no HTTP status')
  t.match(parts('What should I return from my sorting function?'), [{ asksStatus: false }], 'nor is a function\'s, in a question that is not about HTTP')
  for (const question of ['Which UUID version should the client send as the request id?', 'What does Redis return to the client when I read a key that has expired?', 'Which Redis client should I use to send commands?']) {
    t.match(parts(question), [{ asksStatus: false }], `nothing asks what a server answers: "${question}"`)
  }
  for (const sentence of ['It answers 429 Too Many Requests.', 'Returns 404 when the job is gone.', 'with status 202 Accepted', 'often answered with 422.', 'HTTP 429 and 503 answers', 'a clear 400 error']) t.ok(namesStatusCode(sentence), `a status code: "${sentence}"`)
  for (const sentence of ['It returns 100 items per page.', 'The queue answers 300 requests per second.', 'Keep 200 Redis connections open.', 'waits of 100, 200, 400 and 800 milliseconds', 'a 300 second timeout']) t.notOk(namesStatusCode(sentence), `a count: "${sentence}"`)
  const uuid = await research('Which UUID version should the client send as the request id?', 'quick')
  t.same(documents(uuid), ['uuids.md'], 'and no status code is brought into its answer (it cited the 202 sentence)')
  const reasoned = analyseQuestion('Is it ok to print the Redis URL at startup so I can debug my config?').parts[0] as QuestionPart
  t.equal(reasoned.refersBack, false, '"is it ok to" points back at nothing')
  t.match(analyseQuestion('Is it safe to restart Redis, and will it lose keys?').parts, [{ refersBack: false }, { refersBack: true }], 'in a question of two parts too, where the other "it" does point back')
  t.notOk(reasoned.terms.includes('debug'), 'why it is asked is not what is asked')
  t.ok(reasoned.context.includes('debug'), 'but stays its context')
  t.equal((analyseQuestion('The breaker is open. Does it still send requests to the failing service?').parts[0] as QuestionPart).refersBack, true, '"does it still send" points back at the breaker')
})

t.test('an asking word is taken out as a word, not by its stem: "generally" takes no "generate" with it, nor "sort of" a "sorted" (a question about generating ids lost "generate")', async (t) => {
  const terms = (text: string): string[] => (analyseQuestion(text).parts[0] as QuestionPart).terms
  t.ok(terms('What kind of value should a client generate for its idempotency key?').includes(stem('generate')), '"generate" is a term')
  t.ok(terms('How are members of a sorted set ordered?').includes(stem('sorted')), '"sorted" is a term')
  t.notOk(terms('What does a client generally send as an idempotency key?').includes(stem('generally')), '"generally" still only asks')
  t.notOk(terms('What sort of id should I use?').includes(stem('sort')), 'and so does "sort of"')
})

t.test('each part of a question is answered on its own, when the parts are about different things', async (t) => {
  for (const query of ['Why do retries need jitter, and what is BM25?', 'What is a UUID v7, and how does AOF work?', 'What is a circuit breaker, and what is idempotency?']) {
    const report = await research(query, 'deep')
    t.same(report.answer?.parts.map((p) => p.answered), [true, true], query)
    t.equal(report.answer?.status, 'answered')
  }
})

t.test('a part that says nothing itself ("Why?") is answered from, and headed with, what the question says around it', async (t) => {
  const report = await research('My jobs vanished after Redis restarted. Why, and which setting keeps them next time?', 'deep')
  t.match(report.answer?.parts, [{ question: 'Why', answered: true }, { question: 'Which setting keeps them next time', answered: true }])
  t.match(report.summary, /^Without persistence a restarted Redis starts empty/)
  t.equal(report.sections[0]?.heading, 'Why? (My jobs vanished after Redis restarted.)')
})

t.test('max_sources caps the documents cited, the summary\'s included', async (t) => {
  const report = await engine.run({ query: 'What does a lease do when a worker crashes, and why do retries need jitter?', depth: 'standard', options: resolveOptions({ depth: 'standard', max_sources: 1 }) }, recorder())
  t.equal(report.sources.length, 1)
  t.match(report.answer, { status: 'partial', parts: [{ answered: true }, { answered: false }] })
  t.match(report.summary, /do not answer "Why do retries need jitter\?" within max_sources \(1\)/)
  // One part's answer picks its sentences together: two of documents not yet cited took two places of one.
  for (const depth of ['quick', 'deep'] as const) {
    const one = await engine.run({ query: 'For a service that processes background jobs, which conditions are actually worth paging someone about?', depth, options: resolveOptions({ depth, max_sources: 1 }) }, recorder())
    t.equal(one.sources.length, 1, `${depth}: one part's answer holds to max_sources too (cited ${one.sources.map((s) => s.path_or_url).join(', ')})`)
    citationsHold(t, one)
  }
})

t.test('a hedge before the asking word ("worst case, how many...") is not something the part asks about (it said "not found")', async (t) => {
  const report = await research('we have three layers of services and each one retries 3 times when a call fails. worst case, how many calls can one user request turn into?', 'quick')
  t.equal(report.answer?.status, 'answered')
  t.match(report.summary, /64 calls/)
  for (const hedged of ['In the worst case, how long does a lease last?', 'Worst-case scenario, how long does a lease last?', 'Realistically speaking, how long does a lease last?']) {
    t.same(analyseQuestion(hedged).parts[0]?.words, analyseQuestion('How long does a lease last?').parts[0]?.words, hedged)
  }
})

t.test('a later part about "the" something, or "it", of a part on a thing the sources never mention is about that thing too ("...World Cup final and what was the score?" cited BM25 scores)', async (t) => {
  for (const query of ['Who won the 2018 World Cup final and what was the score?', 'How do I set up Kafka and how do I make it retry failed messages?']) {
    const report = await research(query, 'quick')
    t.equal(report.answer?.status, 'not_found', query)
    t.same(report.sources, [])
  }
  for (const query of [
    'What does appendfsync everysec lose in a crash, and how do I configure Kafka retention?',
    // Its "it" is Redis, named before it; a part of its own that names one thing of two words.
    'How do I configure Kafka retention, and how does Redis pick which keys to evict when it runs out of memory?',
    'How do I configure Kafka retention, and what is the token bucket?',
    // Its "its" is AOF; Kafka is two parts back.
    'What does appendfsync everysec lose, how do I configure Kafka retention, and how does AOF rewrite its file?'
  ]) t.equal((await research(query, 'quick')).answer?.status, 'partial', `a part of its own is still answered: ${query}`)
})

t.test('"load" and "save" are how people say read and write: a lost update "without taking locks" is prevented by writing only if the version read is still the one stored', async (t) => {
  const report = await research('Two API requests load the same record, both modify it, and the second save silently throws away the first one\'s change. What is this problem called, and how do I prevent it without taking locks?', 'quick')
  t.match(report.summary, /lost update/)
  t.match(report.summary, /writes it only if the stored version/)
})

t.test('a letter written as a word is a name ("k1 and b"): BM25\'s b was dropped as a short word, and its part went unanswered', async (t) => {
  const report = await research('In BM25 what do the k1 and b knobs actually do, and what values do people normally pick?', 'quick')
  t.match(report.summary, /The parameter b, usually 0\.75/)
  t.same(keyTerms('what do k1 and b do'), ['k1', 'b'])
  t.same(keyTerms("a job's lease, e.g. one I'd renew, x-ray"), ['job', 'leas', 'renew', 'x-rai', 'rai'], 'not "a", "I", what an apostrophe leaves, an abbreviation or a hyphenated word\'s letter')
})

t.test('a signed number is a value asked about ("what does -1 mean"), not a count to drop: its answer opened on what expiry is for', async (t) => {
  const report = await research('TTL on some of my redis keys comes back as -1 even though I created them with SETEX. later on our code updates them with a normal SET. what does -1 mean and why did the expiry go away?', 'standard')
  t.match(report.summary, /^`EXPIRE` sets a TTL[^.]*\(-1 when the key has no TTL/)
  t.ok(keyTerms('what does -1 mean').includes('1'))
  t.notOk(keyTerms('retry 3 times, 2-3 seconds apart').includes('3'), 'a count or a range is still no term')
})

t.test('"v4" asks about version 4, not any version: "uuid v4 and v7" opened on versions 7 and 1, and version 4 came last', async (t) => {
  t.same(tokenize('uuid v4'), ['uuid', 'v4', 'version', '4'], 'a source that writes "v4" holds version 4 too')
  const report = await research('difference between uuid v4 and v7?', 'quick')
  const [first, second] = sentences(report.summary)
  t.match(`${first} ${second}`, /Version 4[^]*Version 7|Version 7[^]*Version 4/)
  t.notMatch(`${first} ${second}`, /Version 1/)
})

t.test('a difference asked after what it compares ("token bucket vs fixed window, what\'s the real difference?") compares the two, and each side is answered from a passage on it alone: the fixed window was never described', async (t) => {
  const [after] = analyseQuestion('token bucket vs fixed window, what\'s the real difference?').parts
  t.same(after?.compared, [contentTerms('token bucket'), contentTerms('fixed window')], 'the things compared come before "what\'s the difference"')
  t.notOk(after?.terms.includes(stem('real')), '"real" says how much of a difference, not what it is about')
  t.same(after?.measured, [], 'and asks no amount of anything')
  for (const asked of ['token bucket vs fixed window, whats the difference exactly?', 'token bucket or fixed window, what\u2019s the biggest difference between them?']) {
    t.same(analyseQuestion(asked).parts[0]?.compared, after?.compared, `as asked on a phone: ${asked}`)
  }
  t.ok(analyseQuestion('idempotency key differences from a request id?').parts[0]?.terms.includes(stem('key')), '"key" before "differences" may be the thing asked about')
  for (const query of ['token bucket vs fixed window, what\'s the real difference?', 'what\'s the real difference between token bucket and fixed window?']) {
    const report = await research(query, 'quick')
    t.match(report.summary, /A token bucket holds up to N tokens/, `${query}: the token bucket`)
    t.match(report.summary, /The fixed window counter counts requests/, `${query}: and the fixed window, from its own passage, which holds half the part's words`)
    t.notMatch(report.summary, /sliding window/i, 'not another window that shares a word with it')
  }
})

t.test('"80%" is a percentage, on the question\'s side and the sources\': "percentage" is how other sources write it', async (t) => {
  t.ok(contentTerms('it drops from 80% to 10 %').includes(stem('percentage')))
  t.same(tokenize('uptime 99.9 %, or 95%.'), ['uptime', '99', '9', 'percentage', 'or', '95', 'percentage'])
  t.same(tokenize('a%20b, 10 % 3, 80%off, %50'), ['a', '20b', '10', '3', '80', 'off', '50'], 'not a URL\'s escape, a remainder, a word glued on, or a sign before the number')
  t.ok(stemsOf('Error rates above 5% page someone.').has(stem('percentage')), 'a page that writes the sign holds the word')
  // A passage's stems are its parts' (title, heading, sentences), but a number and its sign read
  // across the parts as they would in one text.
  const passage = (heading: string, text: string, id: number): Passage => ({ id, path: 'uptime.md', location: 'uptime.md', kind: 'corpus', title: 'Uptime', heading, text })
  const collection = new PassageCollection([passage('Nodes down: 80', '% of them come back within a minute.', 0), passage('Budget: 99.9%', '5 nodes may fail at once without an outage.', 1), passage('Budget', 'Error rates above 5% page someone at night.', 2)])
  for (const p of collection.passages) {
    t.same([...collection.stemsOf(p)].sort(), [...stemsOf(`${p.title} ${p.heading} ${p.text}`)].sort(), `${p.heading} ${p.text}`)
  }
  t.ok(collection.stemsOf(collection.passages[0] as Passage).has(stem('percentage')), '"80" in the heading and "%" in the text')
})

t.test('a "how do I" part is answered from the sections after a document\'s opening, which states the problem: "make that retry safe" gave the definition of idempotent, not the stored response', async (t) => {
  const report = await research('Our mobile app times out on POST /orders and retries, and now and then we end up with two orders. How do I make that retry safe, and what should the server send back for the repeat?', 'quick')
  const section = report.sections.find((s) => s.heading === 'How do I make that retry safe?')
  t.match(section?.body, /returns the stored response/)
  t.notMatch(section?.body, /A request is idempotent when/)
})

t.test('a question\'s rarer words are searched alone too: at quick, the progress bar that jumps back found only passages holding its everyday words ("job", "back", "retried") and answered with retry budgets', async (t) => {
  const report = await research('the progress bar jumps from 80% back down to 10% when a job gets retried. how do I stop that?', 'quick')
  t.match(report.summary, /^Some fields should only grow, such as a progress percentage\.[^]*taking the maximum/)
  t.same(report.sources.map((s) => s.path_or_url), ['corpus/optimistic-concurrency.md'])
  t.same(report.searched?.queries, ['the progress bar jumps from 80% back down to 10% when a job gets retried. how do I stop that?', 'progress percentage retry'], 'the rarer words searched alone, named by themselves')
})

t.test('among sentences whose title holds every word asked, the one that says them itself ranks first: "how does another worker end up picking that job up" got "the next worker then starts them immediately" (of graceful shutdown), not "another worker may take the job over"', async (t) => {
  const report = await research('A worker got OOM-killed halfway through a job. How does another worker end up picking that job up?', 'quick')
  t.match(report.summary, /the lease runs out and another worker may take the job over/)
})

t.test('an abbreviation of a term the sources spell out is that term, not a name they never mention ("sse" said "not found")', async (t) => {
  const report = await research('sse question: when the browser loses the event stream and reconnects, how does the server know which updates it already got?', 'quick')
  t.equal(report.answer?.status, 'answered')
  t.match(report.summary, /Last-Event-ID/)
})

t.test('a part the sources do not cover is named as such; the rest is answered', async (t) => {
  const report = await research('What does appendfsync everysec lose in a crash, and how do I configure Kafka retention?')
  t.match(report.answer, { status: 'partial', parts: [{ answered: true }, { question: 'How do I configure Kafka retention', answered: false, sources: [] }] })
  t.match(report.summary, /one second of writes[^]*The sources searched do not answer "How do I configure Kafka retention\?"/)
})

t.test('deeper research runs more rounds and reaches more of a question than quick', async (t) => {
  const query = 'My jobs vanished after Redis restarted. Why, and which setting keeps them next time?'
  const quick = await research(query, 'quick')
  const deep = await research(query, 'deep')
  t.equal(quick.stats.rounds, 1)
  t.ok((deep.stats.rounds ?? 0) > 1, `deep ran ${deep.stats.rounds} rounds`)
  t.ok((deep.searched?.queries.length ?? 0) > (quick.searched?.queries.length ?? 0), 'and more searches')
  t.ok(deep.sections.length >= quick.sections.length)
  t.ok((deep.markdown ?? '').length > (quick.markdown ?? '').length, 'and writes a longer report')
  t.same(Object.fromEntries(Object.entries(DEPTH_PLANS).map(([d, p]) => [d, p.rounds])), { quick: 1, standard: 2, deep: 4 })
  t.match(deep.markdown, new RegExp(`\\n\\*Searched the corpus \\(14 documents, \\d+ passages\\), with \\d+ searches in ${deep.stats.rounds} rounds\\.\\*\\n$`), 'the report says how many rounds it ran')
})

t.test('a corpus-only job moves its bar in steps: no step jumps more than 25 points, but for rounds left out because nothing was left to search', async (t) => {
  for (const depth of ['quick', 'standard', 'deep'] as const) {
    const context = recorder()
    const report = await research('How do leases recover jobs from crashed workers?', depth, context)
    const steps: Array<[number, string]> = [[0, 'created'], ...context.steps, [100, 'completed']]
    const jumps = steps.slice(1).map(([p, step], i) => ({ jump: p - (steps[i] as [number, string])[0], step }))
    const maxRounds = { quick: 1, standard: 2, deep: 4 }[depth]
    // A job that finds everything before its last round ends its rounds there: that is work not needed, not work unseen.
    const early = (step: string): boolean => (report.stats.rounds ?? 0) < maxRounds && /nothing more to search for$/.test(step)
    t.ok(jumps.every(({ jump, step }) => jump <= 25 || early(step)), `${depth}: ${steps.map(([p]) => p).join(' -> ')}`)
    t.ok(context.steps.filter(([, step]) => /^Round 1\/\d: /.test(step)).length >= 3, `${depth}: steps within the first round`)
  }
})

t.test('progress climbs through the rounds and leaves 100 to the runner', async (t) => {
  for (const depth of ['quick', 'standard', 'deep'] as const) {
    const context = recorder()
    const report = await research('How do leases recover jobs from crashed workers, and why add jitter to retries?', depth, context)
    const percents = context.steps.map(([p]) => p)
    t.same(percents, [...percents].sort((a, b) => a - b), `${depth}: progress never goes down`)
    t.ok(percents.every((p) => p >= 0 && p < 100), 'the engine leaves 100 to the runner')
    const rounds = context.steps.filter(([, step]) => /^Round \d\/\d: searching for/.test(step))
    t.equal(rounds.length, report.stats.rounds, `${depth}: one step per round`)
    t.match(context.steps.map(([, s]) => s).join('\n'), /Indexing the corpus\nIndexed 14 documents[^]*Round 1\/\d[^]*Writing the report/)
    citationsHold(t, report)
  }
})

t.test('each source links to where a person opens it, with the sentences quoted from it', async (t) => {
  const linked = researchEngine({ corpusLink: (path) => `/v1/corpus/${path}` })
  t.teardown(() => linked.close())
  const report = await linked.run({ query: 'What is the difference between RDB snapshots and AOF persistence?', depth: 'standard' }, recorder())
  const source = report.sources[0]
  t.equal(source?.link, '/v1/corpus/redis-persistence.md')
  t.ok((source?.quotes?.length ?? 0) > 0)
  for (const quote of source?.quotes ?? []) t.ok(report.summary.includes(quote.text) || report.sections.some((s) => s.body.includes(quote.text)), `quoted in the report: ${quote.text.slice(0, 40)}`)
  t.match(report.markdown, /1\. \*\*Redis persistence[^*]+\*\*, \[`corpus\/redis-persistence\.md`\]\(\/v1\/corpus\/redis-persistence\.md\), passages used: /)
})

t.test('an aborted signal stops the engine at its next step', async (t) => {
  const controller = new AbortController()
  const steps: string[] = []
  const run = engine.run({ query: 'circuit breaker half-open state and why it probes', depth: 'deep' }, {
    signal: controller.signal,
    progress: async (_p, step) => {
      steps.push(step)
      if (step.startsWith('Indexed')) controller.abort(new Error('stop here'))
    }
  })
  await t.rejects(run, { message: 'stop here' })
  t.notOk(steps.some((s) => s.startsWith('Round')), 'no round ran after the abort')
})

t.test('a missing or empty corpus is a permanent error, and the next job may retry the index', async (t) => {
  const missing = researchEngine({ corpus: new CorpusRetriever('/nonexistent/corpus') })
  await t.rejects(missing.run({ query: 'anything', depth: 'quick' }, recorder()), PermanentError)
  const empty = mkdtempSync(join(tmpdir(), 'corpus-'))
  const emptyEngine = researchEngine({ corpus: new CorpusRetriever(empty) })
  await t.rejects(emptyEngine.run({ query: 'anything', depth: 'quick' }, recorder()), /no \.md or \.txt documents/)
  writeFileSync(join(empty, 'notes.txt'), 'Lighthouses guide ships along dangerous coasts at night.\n\nA lighthouse keeper maintained the lamp every night of the year.')
  const report = await emptyEngine.run({ query: 'What did a lighthouse keeper maintain?', depth: 'quick' }, recorder())
  t.equal(report.sources[0]?.title, 'notes', 'a document without a heading is titled by its file name')
  t.match(report.summary, /keeper maintained the lamp/)
})

t.test('documents are cut into passages under their headings', async (t) => {
  const long = 'word '.repeat(200).trim()
  const passages = splitDocument('a/b.md', `# Title\n\nIntro.\n\n## Part one\n\n${long}\n\n${long}\n\n## Part two\n\nEnd.`)
  t.same(passages.map((p) => p.heading), ['Title', 'Part one', 'Part one', 'Part two'])
  t.ok(passages.every((p) => p.title === 'Title' && p.path === 'a/b.md'))
  t.same(passages.map((p) => p.opening === true), [true, false, false, false], 'what comes before the first section is the opening')
  t.same(splitDocument('page', '# Title\n\nIntro.\n\n## Title\n\nMore intro.\n\n## Part\n\nEnd.').map((p) => p.opening === true), [true, true, false], 'the title again (a page\'s own heading) still heads the opening')
  t.notOk(splitDocument('notes.txt', 'Just text.\n\nMore text.').some((p) => p.opening === true), 'a document without sections has no opening')
})

t.test('a "how do I" part counts a sentence of a document\'s opening 0.05 less; other parts do not', async (t) => {
  const [opening, section] = splitDocument('storms.md', '# Retry storms\n\nClients that retry together knock the service over again.\n\n## Spreading retries\n\nClients should wait a random time before they retry.')
  const collection = new PassageCollection([opening, section].map((p, id) => ({ ...(p as DocumentPassage), id, location: 'storms.md', kind: 'corpus' as const })))
  const score = (question: string, passage: Passage): number => {
    const part = analyseQuestion(question).parts[0] as QuestionPart
    return findingsFor(part, [{ passage, score: 1 }], collection)[0]?.score ?? 0
  }
  const [first, second] = collection.passages as [Passage, Passage]
  const asOpening = { ...second, opening: true }
  t.equal(Number((score('How do I stop clients that retry together?', second) - score('How do I stop clients that retry together?', asOpening)).toFixed(3)), 0.05)
  t.equal(score('Why do clients that retry together knock the service over?', second), score('Why do clients that retry together knock the service over?', asOpening))
  t.ok(first.opening)
})

t.test('text helpers', async (t) => {
  t.same(keyTerms('How does the Redis AOF work in 2024?'), ['redi', 'aof', 'work', '2024'], 'a number of three digits or more is a term (a status code, a year)')
  t.same(keyTerms('uuid v4, BM25 k1 and at-least-once'), ['uuid', 'version', '4', 'bm25', 'k1', 'at-least-onc', 'least'], '"v4" is version 4; a hyphenated word gives its parts, and itself when they say little')
  t.same(['retries', 'retrying', 'retried', 'retry'].map(stem), ['retri', 'retri', 'retri', 'retri'], 'one stem for the forms of a word')
  t.same(['persistence', 'persist', 'eviction', 'evicted'].map(stem), ['persist', 'persist', 'evict', 'evict'], 'Porter: a noun and its verb are one term')
  t.same(['rewritten', 'rewrite', 'lost', 'lose', 'won'].map(stem), ['rewrit', 'rewrit', 'lose', 'lose', 'win'], 'irregular past forms')
  t.same(keyTerms("Why won't two clients collide, and doesn't Redis help? Don't they retry?"), ['client', 'collid', 'redi', 'help', 'retri'], 'a negation says "not": no "win" from "won\'t", no "doesn" or "don"')
  t.same(keyTerms('It doesn’t expire'), ['expir'], 'with a typographic apostrophe too')
  t.same(tokenize("DON'T RETRY, ISN’T IT"), ['retry', 'it'], 'in capitals too')
  // Text from pages is hostile: a run of letters that alternates ASCII and not ("aбaб…") made
  // the negation pattern scan on from every position. Ten short runs against one ten times as
  // long, in the same process: linear costs the same, quadratic ten times more. Each ends in a
  // negation, so the pattern is tried (text without one is not scanned for it).
  const run = (length: number): string => `${'aб'.repeat(length / 2)} don't`
  const time = (texts: string[]): number => { const start = performance.now(); for (const text of texts) tokenize(text); return performance.now() - start }
  time([run(20_000)])
  const tenShort = Math.min(...[1, 2, 3].map(() => time(Array.from({ length: 10 }, () => run(4_000)))))
  const oneLong = Math.min(...[1, 2, 3].map(() => time([run(40_000)])))
  t.ok(oneLong < 4 * tenShort + 5, `tokenizing grows linearly with a run of mixed letters: 10 × 4,000 in ${tenShort.toFixed(1)} ms, 40,000 in ${oneLong.toFixed(1)} ms`)
  // A run of digits made the span-of-time pattern try every start of the run (50,000 digits: 4 s).
  const digits = (length: number): string => '7'.repeat(length)
  const timeSpans = (texts: string[]): number => { const start = performance.now(); for (const text of texts) statesSpanOfTime(text); return performance.now() - start }
  timeSpans([digits(20_000)])
  const tenShortDigits = Math.min(...[1, 2, 3].map(() => timeSpans(Array.from({ length: 10 }, () => digits(4_000)))))
  const oneLongDigits = Math.min(...[1, 2, 3].map(() => timeSpans([digits(40_000)])))
  t.ok(oneLongDigits < 4 * tenShortDigits + 5, `looking for a span of time grows linearly with a run of digits: 10 × 4,000 in ${tenShortDigits.toFixed(1)} ms, 40,000 in ${oneLongDigits.toFixed(1)} ms`)
  t.same(sentences('One sentence. Two here! Three? yes'), ['One sentence.', 'Two here!', 'Three? yes'])
  t.equal(similarity('a b c', 'a b c'), 1)
  t.equal(similarity('', 'a'), 0)
  t.equal(truncate('short', 10), 'short')
  t.equal(truncate('lighthouse keepers work', 16), 'lighthouse…', 'cut at a word boundary')
  t.equal(truncate('abcdefghijklmnop', 8), 'abcdefg…', 'or mid-word when no space is near')
})
