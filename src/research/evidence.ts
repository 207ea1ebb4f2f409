import { EVERYDAY_RANK, englishRank } from './english-words.js'
import { ALTERNATIVE_WEIGHT, alternativesOf } from './lexicon.js'
import { keyTerms, stem } from './text.js'
import { KINDS_OF_THING, type QuestionPart, type QuestionType } from './question.js'
import { type PassageCollection, type Sentence, type ScoredPassage, stemsOf } from './passage-collection.js'

/** A part whose own words are all everyday ones ("what's going on", "why does that happen") is about the rest of the question. */
function saysLittleItself (part: QuestionPart): boolean {
  return part.terms.every((t) => englishRank(t) <= EVERYDAY_RANK)
}

/** A word of the question with the stems that match it and what finding it is worth. */
export interface WeightedTerm {
  stem: string
  /** Stems that stand for it: words of its lexicon group, and forms of it the collection holds ("unstuck": "stuck"). */
  alternatives: string[]
  weight: number
  /** The part's own word, not one borrowed from the rest of the question. */
  own: boolean
  /** One of the thousand most frequent words of spoken English ("put", "see", "job"): it says little of what is asked. */
  everyday: boolean
  /** Some passage holds it (or a word that stands for it). */
  known: boolean
}

/** Share of a context term's weight: "how do I make jobs retry, and why" is mostly about its own words... */
const CONTEXT_WEIGHT = 0.4
/** ...and "how do I prevent it" half about what "it" is. */
const REFERRED_WEIGHT = 0.8

/**
 * What a word is worth by how common it is in spoken English: the collection is small, so its
 * rarity there alone overrates a plain verb ("put", "see"). A word no passage holds counts by
 * the same scale, lower: an everyday one ("sure", "bother") is mostly how the question was
 * put; a rare one ("kafka", "sourdough") is what it asks about.
 */
function englishShare (termStem: string, held: boolean): number {
  const rank = englishRank(termStem)
  if (held) return rank <= EVERYDAY_RANK ? 0.5 : rank <= 3000 ? 0.75 : 1
  return rank <= 3000 ? 0.3 : rank <= 20_000 ? 0.6 : 1
}

/**
 * The part's words weighed by rarity in the collection and in English (englishShare). Words it
 * borrows from the rest of the question count less, and not at all when no passage holds them
 * (they are another part's business).
 */
export function weighTerms (part: QuestionPart, collection: PassageCollection): WeightedTerm[] {
  // A part that says little itself ("what's going on", "how do I prevent it") is about the rest of the question.
  const saysLittle = saysLittleItself(part)
  const contextShare = saysLittle ? 1 : part.refersBack ? REFERRED_WEIGHT : CONTEXT_WEIGHT
  const weigh = (termStem: string, share: number, own: boolean): WeightedTerm | null => {
    const alternatives = alternativesOf(termStem)
    let held = collection.holds(termStem) || alternatives.some((a) => collection.holds(a))
    if (!held) {
      for (const form of collection.formsOf(termStem)) alternatives.push(form, ...alternativesOf(form))
      held = alternatives.some((a) => collection.holds(a))
    }
    // A word another part borrows is its business when nothing holds it; a hyphenated one ("re-try") is said by its parts.
    if (!held && (!own || termStem.includes('-'))) return null
    return {
      stem: termStem,
      alternatives,
      own,
      everyday: englishRank(termStem) <= EVERYDAY_RANK,
      known: held,
      weight: share * englishShare(termStem, held) * collection.idf(termStem)
    }
  }
  return [...part.terms.map((t) => weigh(t, 1, true)), ...part.context.map((t) => weigh(t, contextShare, false))].filter((t): t is WeightedTerm => t !== null)
}

/** The weighted share (0-1) of the terms found among `stems`; a group word counts a little less. */
export function coverage (terms: WeightedTerm[], stems: Set<string>): number {
  let total = 0
  let found = 0
  for (const term of terms) {
    total += term.weight
    if (stems.has(term.stem)) found += term.weight
    else if (term.alternatives.some((a) => stems.has(a))) found += term.weight * ALTERNATIVE_WEIGHT
  }
  return total === 0 ? 0 : found / total
}

/** Whether `stems` holds the term itself or a word of its lexicon group. */
export function holdsTerm (stems: Set<string>, term: WeightedTerm): boolean {
  return stems.has(term.stem) || term.alternatives.some((a) => stems.has(a))
}

/** How many of the terms `stems` holds (itself or a word of its group). */
function held (terms: WeightedTerm[], stems: Set<string>): number {
  return terms.filter((t) => holdsTerm(stems, t)).length
}

/** The terms of `terms` that none of `stems` matches. */
export function missing (terms: WeightedTerm[], stems: Set<string>): WeightedTerm[] {
  return terms.filter((t) => !holdsTerm(stems, t))
}

/** A sentence weighed as an answer to one part of the question. */
export interface Finding {
  sentence: Sentence
  score: number
  /** Share of the part's terms the sentence itself holds. */
  sentenceCoverage: number
  /** Share of the part's terms its passage (title, heading, text) holds. */
  passageCoverage: number
  /**
   * Whether the sentence speaks to what the part asks: its passage holds two of the words the
   * part asks about (or its only one, with a word of the rest of the question), the sentence
   * holds a word of the part, and a quantity when the part asks how much or how many.
   */
  onPoint: boolean
}

/** Words that mark a sentence as the kind of answer each type of question asks for. */
const CUES: Record<QuestionType, RegExp> = {
  why: /\b(?:because|so that|since|causes?|caused by|leads? to|results? in|multipl(?:y|ies|ied|ying)|otherwise|in order to|to (?:avoid|prevent|keep|stop|make sure)|prevents?|the reason|which means|means that|without|so (?:a|the|that|it|every|no))\b/i,
  how: /\b(?:by (?:\w+ing)|with|when|so|then|appends?|replays?|flushes|renews?|compares?|records?|holds?|writes?|reads?|keeps?|sends?|checks?)\b/i,
  'how-to': /^(?:enable|set|use|send|keep|give|store|retry|make|add|return|put|call|honou?r|write|read|check|cap|limit|configure|run|start|stop|hand|release|treat|choose|pick|prefer|avoid|do not|don't)\b|\b(?:fix(?:es)?|prevents?|avoids?|solves?|should|must)\b/i,
  which: /\b(?:use|choose|prefer|recommend\w*|should|usual\w*|best|safest|default|instead|enable|fewest|least|lowest|fastest|simplest|cheapest|better than|outperforms?)\b/i,
  what: /^(?:an? |the )?[\w`-]+(?: [\w`-]+){0,5} (?:is|are|means|refers to|calls?|describes?|gives?|keeps?)\b/i,
  difference: /\b(?:while|whereas|unlike|instead|but|differs?|not the same|rather than|both|only)\b/i,
  'yes-no': /\b(?:not|no|never|only|always|cannot|must|should)\b|\b\w+n['’]t\b/i,
  when: /\b(?:when|after|before|until|once|as soon as|if|whenever)\b/i,
  amount: /\d|\b(?:once|twice|every|at most|at least|per|seconds?|minutes?|hours?|percent|half|double)\b/i
}
const CUE_BONUS = 0.12
/** What the share of a part's words a sentence holds itself, not through its heading or title, adds to its score. */
const SAID_ITSELF = 0.05
/** "What's the trade-off", "pros and cons", "any downside": a question about what each choice costs and gives... */
const TRADE_OFF_ASKED = /\btrade-?offs?\b|\bpros and cons\b|\b(?:downsides?|drawbacks?|upsides?)\b/i
/** ...answered by sentences that say so. */
const TRADE_OFF = /\b(?:costs?|costly|simple|simpler|cheap|cheaper|expensive|downsides?|drawbacks?|advantages?|benefits?|but|however|wasted?|overhead|price)\b/i
/** "What is this called", "is there a name for this": a question after the name of what it describes... */
const NAME_ASKED = /\b(?:called|named|known as)\b|\b(?:name|term|word) for\b/i
/** ...answered by a sentence that gives one: "A lost update happens when...", "SQS calls this a visibility timeout". */
const NAMES_A_THING = /^(?:an? |the )?[\w`-]+(?: [\w`-]+){0,3} (?:happens|occurs|arises) when\b|\b(?:is called|are called|is known as|calls (?:this|it|these))\b/i
/** "What kind of value", "which type of key": a question after an instance of a kind... */
const KIND_ASKED = /\b(?:what|which) (?:kinds?|types?|sorts?) of\b/i
/** ...answered by a sentence that gives one: "typically a UUID", "such as Redis". */
const GIVES_AN_INSTANCE = /\b(?:such as|for example|for instance|e\.g\.)(?!\w)|\b(?:[Tt]ypically|[Uu]sually|[Cc]ommonly),? (?:(?:an?|the)\s|[A-Z])/
/** "Which conditions", "what are our options": a kind of thing named right after the asking word. */
const KIND_NOUN_ASKED = /(?:^|,\s*)(?:which|what)(?:['’]s| is| are)?(?: the| a| an| our| my| your| some| any)?((?: [\p{L}-]+){1,2})/iu

/** Whether a part asks for instances of a kind of thing, which a sentence giving them answers. */
function asksForInstances (part: QuestionPart): boolean {
  if (KIND_ASKED.test(part.text)) return true
  const named = part.type === 'which' ? KIND_NOUN_ASKED.exec(part.text)?.[1] : undefined
  return named !== undefined && keyTerms(named).some((term) => KINDS_OF_THING.has(term))
}

/**
 * ...or lists them after a colon, items parted by commas and the last after ", or" or ", and"
 * ("Alert on symptoms users feel, not on every cause: a service ..., a queue ..., or ..."); no
 * item holds a comma, colon or full stop, so the test is linear in a hostile page's sentence.
 */
const LISTS_INSTANCES = /:\s[^:;.,]+(?:,[^:;.,]+)+,\s(?:or|and)\s/
/** "Which TLS version", "what version of Redis": a question after the version of a named thing (not a record's)... */
const VERSION_ASKED = /(?:^|[,;]\s*)(?:which|what)\s+(?:(?:minimum|lowest|latest|oldest|newest)\s+)?(?:([\p{L}\p{N}-]+)\s+versions?|versions?\s+of\s+([\p{L}\p{N}-]+))\b(?!\s+(?:header|field|number|counter|column|check|tag|string|key|id)s?\b)/iu
/** ...answered only by a sentence that names one ("Version 7 UUIDs", "TLS 1.3", "v4"). */
const NAMES_VERSION = /\bv\d|\d+\.\d|\bversions?\s+\d/i
/**
 * When a which or what part asks for the version of a thing it names ("which TLS version"), what
 * else names one: that thing followed by a number ("Redis 7"). Null when it asks for none.
 */
function versionAskedOf (part: QuestionPart): RegExp | null {
  if (part.type !== 'which' && part.type !== 'what' && part.type !== 'amount') return null
  const match = VERSION_ASKED.exec(part.text)
  const thing = match?.[1] ?? match?.[2]
  if (thing === undefined) return null
  const pieces = thing.toLowerCase().split('-').filter((piece) => piece.length > 1)
  if (pieces.length === 0 || !pieces.every((piece) => part.names.includes(stem(piece)))) return null
  return new RegExp(`\\b${thing.replace(/[^\p{L}\p{N}]/gu, '.')}\\s?v?\\d`, 'iu')
}
const OPENING_LINE = 0.1
/** What a "how do I" part loses in a document's opening passage (before its first section heading). */
const OPENING_PASSAGE = 0.05
/** A quantity: a number, a number word, or a span of time. */
const QUANTITY = /(?<![\p{L}])\d|(?<![\w-])(?:two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|fifty|hundreds?|thousands?|millions?|twice|once (?:a|per|every)|half|double|dozens?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)(?![\w-])/iu
/** A span of time or a rate: what "how long" and "how often" ask for. */
const TIME_QUANTITY = /(?<![\p{L}\p{N}])\d+\s*(?:ms|s|m|h)\b|\b(?:(?:longer|shorter) than|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|once (?:a|per|every)|twice|per (?:second|minute|hour|day))\b/iu

/** Whether a text states a span of time or a rate (see TIME_QUANTITY); linear in its length, as page text is hostile. */
export function statesSpanOfTime (text: string): boolean {
  return TIME_QUANTITY.test(text)
}

/**
 * Whether a sentence states the quantity a how-much part asks for: a number, and what it is of
 * ("16384 hash slots", not "24 hours" for "how many slots"); a span of time for how long.
 */
function statesQuantity (part: QuestionPart, sentence: Sentence): boolean {
  if (part.measured === 'time') return statesSpanOfTime(sentence.text)
  if (!QUANTITY.test(sentence.text)) return false
  return part.measured.length === 0 || part.measured.some((m) => sentence.stems.has(m) || alternativesOf(m).some((a) => sentence.stems.has(a)))
}

/**
 * An HTTP status code as writing names one: with its reason phrase ("429 Too Many Requests"), after the
 * word for it ("status 202", "HTTP 503", "Returns 404", "answered with 422"), or as "a 400
 * error" or "a 429"; not a count ("waits of 100, 200, 400 and 800 milliseconds", "returns 100
 * items", "answers 300 requests per second").
 */
const STATUS_CODE = new RegExp([
  String.raw`\b[1-5]\d\d\s+(?:OK|Created|Accepted|No Content|Moved|Found|See Other|Not|Temporary|Permanent|Bad|Unauthorized|Payment|Forbidden|Method|Request|Conflict|Gone|Length|Precondition|Payload|Content|Unsupported|Unprocessable|Too|Internal|Service|Gateway|Continue|Switching|Partial|Multi|Misdirected|Locked|Upgrade|Expectation|Range)\b`,
  String.raw`\b[1-5]\d\d\s+(?:error|answer|response)s?\b`,
  String.raw`\b(?:[Ss]tatus|HTTP|http|[Cc]odes?|[Aa]nswers?|[Aa]nswered with|[Rr]esponds? with|[Rr]eturns?|[Aa]n?|[Tt]he)\s+[1-5]\d\d\b(?!\s+(?:[a-z]+s|ms|kb|mb|gb|percent|per|second|minute|hour|day|week|byte|item|request|millisecond)\b|%)`
].join('|'))

/** Whether a sentence names an HTTP status code (see STATUS_CODE). */
export function namesStatusCode (text: string): boolean {
  return STATUS_CODE.test(text)
}

const STATUS_WORDS = ['status', 'code'].map(stem)

/** "It", "This", "They": a sentence that leans on the one before reads worse on its own. */
const LEANS_ON_CONTEXT = /^(?:it|this|that|these|those|they|such|then|so)\b/i

/**
 * How many things the words of `focus` name: two words side by side in the part name one thing
 * ("distributed tracing", "connection string"), so a passage holding one of them is on it. Only
 * pairs: "redis connection url" is two things, or a passage holding "redis" alone would do. A
 * comma or other stop between words parts them ("AOF, RDB").
 */
export function thingsNamed (focus: WeightedTerm[], part: QuestionPart): number {
  // Words of prose, each with whether a stop follows it: a URL or a path is one token, its pieces are not words side by side.
  const tokens = part.text.toLowerCase().split(/\s+/)
  const words = tokens.map((token) => stem(token.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '')))
  const stopAfter = tokens.map((token) => /[,;:.!?)]$/.test(token))
  const at = focus.map((t) => words.indexOf(t.stem)).filter((i) => i >= 0).sort((a, b) => a - b)
  let pairs = 0
  for (let k = 1; k < at.length; k++) {
    const [before, here] = [at[k - 1] as number, at[k] as number]
    if (here === before + 1 && !stopAfter[before]) {
      pairs++
      k++ // a pair is two words: the next one starts afresh
    }
  }
  return focus.length - pairs
}

/**
 * Every sentence of the passages, weighed as an answer to `part`: how much of the part it
 * holds (read under its heading), how much its passage holds, how well its passage ranked, and
 * whether it is the kind of sentence the question's type asks for. Best first.
 */
export function findingsFor (part: QuestionPart, found: ScoredPassage[], collection: PassageCollection): Finding[] {
  // Sources name a status code by its number ("answers 429"), not by the words "status code".
  const terms = weighTerms(part, collection).map((t) => part.asksStatus && STATUS_WORDS.includes(t.stem) ? { ...t, known: true } : t)
  const compared = part.compared.map((item) => weighTerms({ ...part, terms: item, context: [] }, collection))
  // What the part asks about: its own words that some passage holds, the everyday ones only when it has no other.
  const own = terms.filter((t) => t.own)
  const context = terms.filter((t) => !t.own)
  // What it asks about: its own words but the everyday ones (those of its context when it says little itself).
  const leansOnContext = saysLittleItself(part) || part.refersBack
  const asked = (leansOnContext ? [...own, ...context] : own).filter((t) => t.known && !t.everyday)
  // A noun for a kind of thing ("what are our options") is answered by its instances, which need not say the noun ("RED method" still does).
  const instances = asked.filter((t) => !KINDS_OF_THING.has(t.stem))
  const focus = instances.length > 0 ? instances : asked
  const need = Math.min(leansOnContext ? 1 : 2, thingsNamed(focus, part))
  const asksTradeOff = TRADE_OFF_ASKED.test(part.text)
  const asksName = NAME_ASKED.test(part.text)
  const asksKind = asksForInstances(part)
  const versioned = versionAskedOf(part)
  const findings: Finding[] = []
  for (const { passage, score: retrieval } of found) {
    const passageStems = collection.stemsOf(passage)
    const passageCoverage = coverage(terms, passageStems)
    const headingStems = stemsOf(`${passage.title} ${passage.heading}`)
    // Two of its words, or its only one; when that one is borrowed from the rest of the question, with another of them
    // (not when its words are the statements around the question: those are what it asks about).
    // A passage that names a status code holds the "status code" a part asks for, in other words.
    const groundStems = part.asksStatus && STATUS_CODE.test(passage.text) ? new Set([...passageStems, ...STATUS_WORDS]) : passageStems
    const grounds = need > 0 && held(focus, groundStems) >= need && (need > 1 || !leansOnContext || context.length === 0 || part.about !== undefined || held(context, passageStems) >= 1)
    for (const sentence of collection.sentencesOf(passage)) {
      const namesStatus = part.asksStatus && STATUS_CODE.test(sentence.text)
      const sentenceCoverage = coverage(terms, new Set([...sentence.stems, ...headingStems, ...(namesStatus ? STATUS_WORDS : [])]))
      if (held(terms, sentence.stems) === 0) continue
      const onPoint = grounds && (part.type !== 'amount' || statesQuantity(part, sentence)) && (versioned === null || NAMES_VERSION.test(sentence.text) || versioned.test(sentence.text))
      // Read under its heading, every sentence of a document whose title holds the question's words covers them all:
      // among those, the one that says them itself ("another worker may take the job over") is the answer.
      let score = 0.5 * sentenceCoverage + 0.25 * passageCoverage + 0.1 * retrieval + SAID_ITSELF * coverage(terms, sentence.stems)
      if (CUES[part.type].test(sentence.text)) score += CUE_BONUS
      // A trade-off is answered by what each side costs and gives.
      if (asksTradeOff && TRADE_OFF.test(sentence.text)) score += CUE_BONUS
      // "What is this called?" is answered by a sentence that names the thing it describes.
      if (asksName && NAMES_A_THING.test(sentence.text)) score += CUE_BONUS
      if (asksKind && (GIVES_AN_INSTANCE.test(sentence.text) || LISTS_INSTANCES.test(sentence.text))) score += CUE_BONUS
      // What a server should send back is answered by a status code.
      if (namesStatus) score += 2 * CUE_BONUS
      // A passage opens on its topic; past a "what is", the answer is rarely that opening line.
      if (sentence.position === 0 && part.type !== 'what') score -= OPENING_LINE
      if (compared.length === 2 && compared.every((item) => coverage(item, sentence.stems) > 0)) score += CUE_BONUS
      if (LEANS_ON_CONTEXT.test(sentence.text)) score -= 0.05
      // A document opens on the problem it is about; what to do about it is in the sections after.
      if (part.type === 'how-to' && passage.opening === true) score -= OPENING_PASSAGE
      const words = sentence.text.split(/\s+/).length
      if (words > 45 || words < 6) score -= 0.05
      findings.push({ sentence, score, sentenceCoverage, passageCoverage, onPoint })
    }
  }
  return findings.sort((a, b) => b.score - a.score || a.sentence.passage.id - b.sentence.passage.id || a.sentence.position - b.sentence.position)
}

/**
 * What a part asks about that no passage holds in any form: the names it asks about ("Kafka",
 * "ZADD", "504"), jargon of its own that spoken English does not use ("nginx", "autovacuum"),
 * and, in a part that points back at the rest of the question ("how do I reshard them"), any rare
 * word of its own. A question about them is one the sources do not cover, however many of its
 * other words match.
 */
export function unknownNames (part: QuestionPart, collection: PassageCollection): string[] {
  const unknown = (term: string): boolean => !collection.holds(term) && !alternativesOf(term).some((a) => collection.holds(a)) && collection.formsOf(term).length === 0
  // A hyphenated word ("re-run", "at-most-once") is held through its parts when not whole: no list of English words has it.
  const rareOwn = part.words.filter((t) => !/\d/.test(t) && !t.includes('-') && englishRank(t) > (part.refersBack ? RARE_RANK : JARGON_RANK))
  return [...new Set([...part.names, ...rareOwn])].filter(unknown)
}

/** Words of spoken English rarer than this (by rank) are rare words: most are names or jargon... */
const RARE_RANK = 20_000
/** ...and past this, or not in the list at all ("nginx", "zadd", "reshard"), a product, a command or jargon. */
const JARGON_RANK = 50_000

/**
 * Whether the sources answer a part: a passage that holds most of what the part asks about,
 * with a sentence that holds a good share of it itself. Below these, the best the search found
 * was pulled in by a word or two in common (measured on test/fixtures/evaluation.json).
 */
export const GROUNDED = { passage: 0.25, sentence: 0.15 }

export function isGrounded (finding: Finding | undefined): finding is Finding {
  return finding !== undefined && finding.onPoint && finding.passageCoverage >= GROUNDED.passage && finding.sentenceCoverage >= GROUNDED.sentence
}
