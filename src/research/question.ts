import { EVERYDAY_RANK, englishRank } from './english-words.js'
import { isStopword, keyTerms, stem } from './text.js'

/**
 * What kind of answer a question asks for: it decides which sentences answer it. `how` asks how
 * something works ("how does AOF protect jobs"), `how-to` what to do ("how do I make retries safe").
 */
export type QuestionType = 'what' | 'why' | 'how' | 'how-to' | 'which' | 'difference' | 'yes-no' | 'when' | 'amount'

export interface QuestionPart {
  /** The part as asked, without its filler ("so, quick question:"): its section's heading. */
  text: string
  type: QuestionType
  /** Stems of its own words that carry meaning. */
  terms: string[]
  /** Stems of the rest of the question: "how do I fix it" borrows what "it" is. */
  context: string[]
  /** For a difference or a choice: the things compared, each as stems. */
  compared: string[][]
  /**
   * For a part that asks how much or how many: what the quantity must be of, as stems ("port",
   * "length", "slot"); `time` for how long or how often; empty when any quantity will do.
   */
  measured: string[] | 'time'
  /** It points back at the rest of the question ("how do I prevent it", "why does that happen"). */
  refersBack: boolean
  /**
   * It asks what an HTTP server answers ("what status code", "what should my POST endpoint
   * answer"): the answer names a status code.
   */
  asksStatus: boolean
  /** Stems of the words it says itself (its terms may be borrowed when it says nothing itself). */
  words: string[]
  /** What it is about when it says nothing itself: the statements around the question ("My jobs vanished after a restart."). */
  about?: string
  /**
   * Stems of the names it asks about: capitalised words past the first, acronyms, camelCase
   * and numbers of three digits or more ("Kafka", "ZADD", "initialDelaySeconds", "504").
   */
  names: string[]
}

export interface Question {
  text: string
  parts: QuestionPart[]
  /** Every meaningful stem of the question. */
  terms: string[]
}

/** Most parts a question is answered in: a report answers each in its summary and gives each a section. */
export const MAX_PARTS = 5

/**
 * Words that say what kind of answer is wanted, not what it is about: "what is the difference",
 * "what happens", "explain", "best way". They are not searched for.
 */
const ASKING_WORDS = new Set(keyTerms(`difference differ different differences happen happens happened work works working
  need needs want wants explain tell know mean means meaning thing things stuff good best better worse really actually
  exactly basically please help question wonder wondering idea point reason purpose anyway okay kind someone
  people exist exists possible possibly correct right wrong true false instead rather matter matters compare compared
  versus usually typically many much often proper`))

const INTERROGATIVE = String.raw`(?:what|what's|whats|why|how|which|when|where|who|is|are|does|do|did|can|could|should|would|will|was|were|has|have|isn't|doesn't|don't|am|must)\b`
/** Where one question ends and the next begins inside a sentence: "..., and why ...", "...; how ...". */
const PART_BOUNDARY = new RegExp(String.raw`\s*(?:;|,\s*(?:and|but|or|also|plus|then|so)?|\s(?:and|but|or|also|plus|then|so)(?:\s+also)?)\s+(?=${INTERROGATIVE})`, 'i')
const FILLER = /^(?:(?:so|ok|okay|hey|hi|hello|well|also|and|but|then|please|quick question|question|one more thing|basically|(?:in (?:the )?)?(?:worst|best)[- ]case(?: scenario)?|at (?:the )?(?:worst|best)|realistically(?: speaking)?|roughly|in practice)[,:]?\s+|(?:can|could) you (?:tell|explain to|explain|show) (?:me )?|i(?:'d| would) like to know |i want to know |i(?: am|'m)? wonder(?:ing)? |do you know )+/i

/** Splits a question into its parts, each with its type, its terms and the context it borrows. */
export function analyseQuestion (text: string): Question {
  const normalised = text.replace(/\s+/g, ' ').trim()
  const sentences = normalised.split(/(?<=[?!.])\s+/).filter((s) => s.length > 0)
  // Beside a sentence that ends in a question mark, "When a job is retried, its progress jumps." says what happens.
  const marked = sentences.some((s) => s.endsWith('?'))
  const asks = (s: string): boolean => isQuestion(s) && !(marked && TELLS_WHEN.test(s))
  const asking = sentences.filter(asks)
  // Statements around the question ("My jobs vanish after deploys.") are context for every part.
  const statements = asking.length === 0 ? [] : sentences.filter((s) => !asks(s))
  const tidy = (text: string): string => text.replace(FILLER, '').replace(/[?.!\s]+$/, '').trim()
  // The same part asked twice is one part; past MAX_PARTS, the rest is searched with the whole question only.
  const rawParts = new Map<string, { text: string, asking: string }>()
  for (const part of asking.length === 0 ? [{ text: normalised, asking: normalised }] : asking.flatMap((sentence) => joinClauses(sentence.split(PART_BOUNDARY)))) {
    const text = tidy(part.text)
    if (text.length > 0 && !rawParts.has(text.toLowerCase()) && rawParts.size < MAX_PARTS) rawParts.set(text.toLowerCase(), { text, asking: tidy(part.asking) })
  }
  // A question of punctuation alone is still one part, that nothing answers.
  if (rawParts.size === 0) rawParts.set('', { text: normalised, asking: normalised })
  // "..., so I can debug it": why the asker wants to know, context to what is asked.
  // "For a service that processes jobs, which conditions...": where the question applies, context to every part as the
  // statements are, and still words the part says (a product named there is still asked about: see unknownNames).
  const scopes = [...rawParts.values()].map((part) => SCOPE.test(part.text) ? leadingClause(part) : '')
  const own = [...rawParts.values()].map((part, i) => contentTerms(withoutDegree(part.text.slice((scopes[i] as string).length).split(PURPOSE)[0] as string)))
  const purposes = [...rawParts.values()].map((part) => part.text.split(PURPOSE).slice(1).join(' '))
  const statementTerms = contentTerms([...statements, ...purposes, ...scopes].join(' '))
  const parts = [...rawParts.values()].map((part, i): QuestionPart => {
    const others = [...statementTerms, ...own.flatMap((terms, j) => (j === i ? [] : terms))]
    const terms = own[i] as string[]
    return {
      text: part.text.charAt(0).toUpperCase() + part.text.slice(1),
      type: typeOf(part.asking),
      terms,
      context: [...new Set(others)].filter((term) => !terms.includes(term)),
      compared: comparedIn(part),
      measured: measuredIn(withoutDegree(part.asking)),
      // Only a later part, or a question with statements around it, has something to point back at:
      // the first part's "its" is its own ("what should a client put in its key").
      refersBack: (i > 0 || statements.length > 0) && REFERS_BACK.test(part.asking.replace(DUMMY_IT, '')),
      asksStatus: asksStatus(part.asking, normalised),
      words: [...new Set([...terms, ...contentTerms(scopes[i] as string)])],
      names: namesIn(part.text)
    }
  })
  // A part with no word of its own ("why does this happen?") is about what the statements say,
  // or else about the rest of the question.
  for (const part of parts) {
    if (part.terms.length > 0) continue
    part.terms = statementTerms.length > 0 ? statementTerms : part.context
    part.context = part.context.filter((term) => !part.terms.includes(term))
    if (statements.length > 0) part.about = statements.join(' ')
  }
  return { text: normalised, parts, terms: [...new Set([...statementTerms, ...own.flat()])] }
}

/**
 * Pieces of one sentence cut at its part boundaries, put back together where a piece does not
 * ask anything itself: "If the box dies, how much do I lose" is one part, asked by its second
 * piece; "what is X, and how does it work" is two.
 */
function joinClauses (pieces: string[]): Array<{ text: string, asking: string }> {
  const parts: Array<{ text: string, asking: string }> = []
  let leading = ''
  for (const piece of pieces) {
    if (!startsAsking(piece)) {
      leading = leading === '' ? piece : `${leading}, ${piece}`
      continue
    }
    parts.push({ text: leading === '' ? piece : `${leading}, ${piece}`, asking: piece })
    leading = ''
  }
  if (leading !== '') {
    const last = parts.at(-1)
    if (last === undefined) parts.push({ text: leading, asking: leading })
    else last.text = `${last.text}, ${leading}`
  }
  return parts
}

function startsAsking (text: string): boolean {
  return new RegExp(`^${INTERROGATIVE}`, 'i').test(text.replace(FILLER, '').trim())
}

/** The whole question as one part: every word of it, its own. */
export function wholeQuestion (question: Question): QuestionPart {
  return { text: question.text, type: 'what', terms: question.terms, context: [], compared: [], measured: [], refersBack: false, asksStatus: false, words: question.terms, names: [] }
}

/**
 * A sentence that opens on when or where something happens ("When a job is retried(,) its
 * progress jumps.") and ends as a statement; not "When should I retry.", nor "When I retry,
 * should I reuse the key."
 */
const ASKING_VERB = String.raw`(?:do|does|did|is|are|was|were|can|could|should|would|will|must|has|have|may|might|how|what|which|why|who)\b`
const TELLS_WHEN = new RegExp(String.raw`^(?:when|where)\s+(?!${ASKING_VERB})(?![^?]*,\s*${ASKING_VERB})[^?]*[.!]$`, 'i')

function isQuestion (sentence: string): boolean {
  return sentence.endsWith('?') || new RegExp(`^${INTERROGATIVE}`, 'i').test(sentence.replace(FILLER, ''))
}

/** The stems a part is about: its key terms without the words that only ask. */
export function contentTerms (text: string): string[] {
  return keyTerms(text.replace(PAGING, (paging) => `${paging}alert `).replace(WHEN_ASKED, ' ').replace(ASKING_PHRASES, ' ')).filter((term) => !ASKING_WORDS.has(term))
}

/**
 * "Page someone", "paging the on-call": an alert to a person, not a web page (the stem is the
 * same). The page stays beside the alert: a page of the web may say "page the on-call" too.
 */
const PAGING = /\bpag(?:e|es|ed|ing)\s+(?=(?:someone|somebody|anyone|anybody|whoever|an? (?:engineer|human|person)|the on[- ]?call|on[- ]?call)\b)/gi

/** Asking words whose stems are content words' too ("generally" and "generate", "sort of" and "sorted"): taken out as words. */
const ASKING_PHRASES = /\bgenerally\b|\bsorts? of\b|\btrade-?offs?\b|\bpros and cons\b/gi

/** "Straight away", "right now", "in practice": when or how generally the asker wants it, not what it is about. */
const WHEN_ASKED = /\b(?:straight|right) (?:away|now|off)\b|\bimmediately\b|\bat once\b|\bin (?:practice|general|real life|the real world)\b|\b(?:these days|nowadays)\b/gi

function typeOf (part: string): QuestionType {
  const p = part.toLowerCase()
  // "What's going on?" after what happened asks what causes it.
  if (/^(?:why|how come)\b/.test(p) || /\bwhat(?:'s| is| are)? the (?:point|reason|purpose|benefit)\b|\bwhat for$/.test(p) || /^what(?:'s| is) (?:going on|happening)$|^what happened$/.test(p)) return 'why'
  if (/\b(?:difference|differ|different from|versus|vs\.?|compared? (?:to|with))\b/.test(p) || SAME.test(p)) return 'difference'
  if (/^how (?:much|many|long|often|big|large|small|fast|soon|high|low|far|old)\b/.test(p) || VALUE.test(p)) return 'amount'
  if (/^how (?:do|can|should|would|could) (?:i|we|you)\b|^how to\b/.test(p)) return 'how-to'
  if (/^how\b/.test(p)) return 'how'
  if (/^which\b/.test(p) || /^what (?:\w+ ){0,2}(?:setting|option|policy|strategy|value|kind|type|library|tool|command|header|status|code|approach)s?\b/.test(p)) return 'which'
  if (/^(?:should|do|does|can|is|are) .+\bor\b/.test(p)) return 'which'
  if (/^when\b/.test(p)) return 'when'
  if (/^(?:is|are|does|do|did|can|could|should|would|will|was|were|has|have|isn't|doesn't|don't|am|must)\b/.test(p)) return 'yes-no'
  return 'what'
}

/**
 * A part that opens on what it is for: "For a service that processes background jobs, ...". Not
 * "In a crash, ..." nor "With the AOF on, ...": a condition is what such a part asks about.
 */
const SCOPE = /^for (?:a|an|the|our|my|your|this|that|these|those|any|each|every) /i

/** Where a part says why it is asked: "so I can", "so that we could". */
const PURPOSE = /\bso (?:that )?(?:i|we|you|they) (?:can|could|may|might|don't|do not|won't)\b/i

/** "What status code", "which response code": named outright. */
const STATUS_NAMED = /\b(?:status|response|http|error) codes?\b/i
/** "What should the endpoint answer", "what does the server send back": an answer asked of the server side... */
const SERVER_ANSWER = /^(?:what|which)\b.*\b(?:server|endpoint|api|route|handler|backend)s?\b.*\b(?:answer|respond|reply|return|send back|send)\b/i
/** ...in a question about HTTP (not "what does Redis return to the client"). */
const HTTP_CONTEXT = /\b(?:http|https|api|endpoint|post|put|patch|delete|rest)s?\b/i

function asksStatus (part: string, question: string): boolean {
  // "Respond with" is how HTTP is spoken of; "return" and "send" are how everything else is.
  return STATUS_NAMED.test(part) || (SERVER_ANSWER.test(part) && (HTTP_CONTEXT.test(question) || /\brespond with\b/i.test(part)))
}

/** A pronoun that stands for something said before it ("that" as in "stop that", not "a service that gets"). */
const REFERS_BACK = /\b(?:it|its|them|those|these|they|their)\b|\b(?:that|this)(?:\s+(?:happens?|be|works?|means?|one)\b|$)/i

/**
 * Whether a later part is about what the part before it asks about: its pronoun comes before any
 * word of its own but everyday ones ("how do I make it retry"; not "how does Redis evict when it
 * fills up", whose "it" is Redis), or it names one thing, as "the" something ("what was the score").
 */
export function pointsAtPartBefore (part: QuestionPart): boolean {
  const pronoun = part.refersBack ? REFERS_BACK.exec(part.text.replace(DUMMY_IT, (dummy) => ' '.repeat(dummy.length))) : null
  if (pronoun !== null) {
    const before = part.text.slice(0, pronoun.index)
    return namesIn(before).length === 0 && contentTerms(before).every((term) => englishRank(term) <= EVERYDAY_RANK)
  }
  return part.names.length === 0 && part.words.length === 1 && /\bthe\s+[\p{L}-]+$/iu.test(part.text)
}

/**
 * Whether a part's pronoun stands for what was asked before it: no name (as namesIn reads one:
 * capitalised, an acronym) comes before the pronoun ("how does Redis pick keys when it's full":
 * "it" is Redis) and only everyday words
 * follow it ("how do I prevent it", "how does the client find out when it's done"; not "how do
 * I make those status checks cheaper", where "those" only points at a thing the part names).
 */
export function pronounStandsAlone (part: QuestionPart): boolean {
  if (!part.refersBack) return false
  const text = part.text.replace(DUMMY_IT, (dummy) => ' '.repeat(dummy.length))
  const pronoun = REFERS_BACK.exec(text)
  if (pronoun === null) return false
  const after = text.slice(pronoun.index + pronoun[0].length)
  return namesIn(text.slice(0, pronoun.index)).length === 0 && namesIn(after).length === 0 &&
    contentTerms(after).every((term) => englishRank(term) <= EVERYDAY_RANK)
}

/** "Is it ok to", "would it be wise to": an "it" that stands for what follows, not for anything said before. */
const DUMMY_IT = /\b(?:(?:is|isn't|was) it|(?:would|will|could) it be) (?:\w+ )?(?:ok|okay|alright|safe|fine|bad|wise|smart|possible|worth it|worth|a good idea|a bad idea|better|worse|normal|necessary|required|recommended|dangerous|risky|enough|true) (?=to|if|that|whether)\b/gi

/** "Is A the same as B", "aren't A and B basically the same thing". */
const SAME = /^(?:is|are|isn't|aren't) .+ (?:the same as|the same(?: thing)?$)/

/** "What is the default timeout", "what port": asks for a value, as "how many" does. */
const VALUE = /^what(?:'s| is| are)? (?:the |a )?(?:default|maximum|minimum|max|min|size|number|count|port|version|price|cost|limit)s?\b/

/**
 * What a quantity asked for must be of: "how many hash slots" (slots), "what is the maximum
 * length of a key" (length), "what port" (port), "how much does it cost" (cost); a span of time
 * for "how long" and "how often"; nothing in particular for "how much data", "how big" or "how high".
 */
function measuredIn (part: string): string[] | 'time' {
  const p = part.toLowerCase()
  if (/^how (?:long|often|soon|fast|quickly)\b/.test(p)) return 'time'
  if (/^how much\b.*\b(?:cost|costs|price|charge|pay)\b/.test(p)) return contentTerms('cost price')
  // "How much data" is answered in seconds of writes as well as in bytes: only "how many" names what is counted.
  const noun = /^how many ((?:[\w-]+ ){0,2}?[\w-]+)(?= (?:do|does|did|is|are|can|should|will|would|of|in|on|for|per|before|after|to|am|i|we)\b|$)/.exec(p)?.[1] ??
    /^what(?:'s| is| are)?(?: the| a| an)?(?: (?:default|maximum|minimum|max|min|usual|typical))? ((?:[\w-]+ ){0,2}?[\w-]+)(?= (?:do|does|did|is|are|can|should|will|would|of|in|on|for|per|that|which|to)\b|$)/.exec(p)?.[1]
  if (noun === undefined) return []
  return contentTerms(noun).filter((term) => !/^(?:default|maximum|minimum|max|min|number|amount)$/.test(term))
}

/** "the real difference", "the main differences": how much of a difference is asked, not a thing asked about. */
function withoutDegree (text: string): string {
  return text.replace(/\b(?:real|main|practical|actual|big|biggest)\s+(?=differences?\b)/gi, '')
}

/** "what's the (real) difference", asking nothing more: what it compares comes before it. */
const BARE_DIFFERENCE = /^(?:what(?:['’]s| is| are)?|whats|is there|are there) (?:the |a |any )?(?:real |main |practical |actual |big |biggest )?differences?(?: between (?:them|the two|the 2|those|these)| exactly| here| then)?$/i

/**
 * What a part compares: named where it asks, or, when that only asks "what's the difference",
 * in the words before it ("rate limiting vs throttling, what's the real difference").
 */
function comparedIn (part: { text: string, asking: string }): string[][] {
  const leading = leadingClause(part)
  if (!BARE_DIFFERENCE.test(part.asking) || leading === '') return comparedItems(part.asking)
  return comparedItems(leading.replace(/[\s,;:-]+$/, ''))
}

/** What a part says before the piece that asks ("If the box dies, " of "If the box dies, how much do I lose"); '' when nothing. */
function leadingClause (part: { text: string, asking: string }): string {
  return part.text.slice(0, part.text.length - part.asking.length)
}

/** "between A and B", "A vs B", "A or B", "A compared to B": the two things, as stems. */
function comparedItems (part: string): string[][] {
  const p = part.replace(/^(?:what(?:['’]s| is| are)?|whats|is there|are there) (?:the |a |any )?(?:real |main |practical |actual |big |biggest )?(?:difference|differences)s? /i, '')
  const match = /\bbetween (.+?) and (.+)$/i.exec(p) ??
    /^(?:.*?\b(?:use|choose|pick|prefer|need)\s+)?(.+?)\s+(?:vs\.?|versus|or|compared (?:to|with)|instead of|rather than)\s+(.+)$/i.exec(p) ??
    /^(?:is|are|isn't|aren't) (.+?) the same as (.+)$/i.exec(p) ??
    /^(?:is|are|isn't|aren't) (.+?) and (.+?) (?:\w+ )?the same(?: thing)?\b/i.exec(p)
  if (match === null) return []
  const items = [match[1] as string, match[2] as string].map(contentTerms).filter((terms) => terms.length > 0)
  return items.length === 2 ? items : []
}

/**
 * Nouns for a kind of thing, and nothing more ("what are our options", "which safeguards"): the
 * answer names instances of it, not the kind. Not "errors", "failures", "checks": those are often
 * what a question is about.
 */
export const KINDS_OF_THING = new Set(keyTerms(`condition conditions safeguard safeguards option options setting settings step steps
  measure measures precaution precautions approach approaches way ways method methods technique techniques kind kinds
  type types sort sorts situation situations scenario scenarios thing things alternative alternatives`))

/** Names in a text (see QuestionPart.names), as stems; a sentence's first word only when written as a name could not be a plain word. */
function namesIn (text: string): string[] {
  const names = new Set<string>()
  for (const sentence of text.split(/(?<=[?!.:;,])\s+/)) {
    const words = sentence.match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? []
    for (const [i, raw] of words.entries()) {
      const word = raw.replace(/['’]s$/, '')
      if (/['’]/.test(word) || isStopword(word.toLowerCase())) continue
      // "OK", "ASAP" in capitals are still everyday words, not names.
      const acronym = (/^\p{Lu}{2,}s?$/u.test(word) && englishRank(stem(word.toLowerCase())) > EVERYDAY_RANK) || /\p{Ll}\p{Lu}/u.test(word)
      const capitalised = i > 0 && /^\p{Lu}\p{Ll}/u.test(word)
      if (acronym || capitalised || /^\d{3,}$/.test(word)) for (const piece of word.toLowerCase().split('-')) if (piece.length > 1 && !isStopword(piece)) names.add(stem(piece))
    }
  }
  return [...names]
}
