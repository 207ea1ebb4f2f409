import { stem } from './text.js'

/**
 * Everyday words people ask with, grouped with the words technical writing uses for the same
 * thing: "my jobs vanished" should find "a crash loses the jobs". Each group is one idea; a
 * question's word matches any word of its group, at a discount (see ALTERNATIVE_WEIGHT).
 * Written for the service's domain (running services, queues, Redis, HTTP APIs) and kept
 * general on purpose: a word belongs here because people say it, not because a test asks it.
 */
const GROUPS: string[][] = [
  ['lose', 'lost', 'loss', 'losing', 'vanish', 'disappear', 'gone', 'missing', 'wiped', 'erase', 'drop'],
  ['crash', 'die', 'dead', 'kill', 'killed', 'fail', 'failure', 'down'],
  ['restart', 'reboot', 'bounce', 'redeploy', 'deploy', 'deployment'],
  ['overload', 'hammer', 'flood', 'overwhelm', 'swamp', 'stampede', 'thundering', 'storm'],
  ['slow', 'lag', 'latency', 'sluggish'],
  ['duplicate', 'twice', 'double', 'again', 'repeat', 'repeated'],
  ['overwrite', 'clobber', 'stomp', 'race', 'concurrent', 'simultaneous'],
  ['stuck', 'hang', 'hung', 'forever', 'frozen', 'orphan', 'orphaned'],
  ['wait', 'delay', 'pause', 'backoff', 'sleep'],
  ['limit', 'throttle', 'cap', 'quota'],
  ['encrypt', 'encrypted', 'encryption', 'tls', 'ssl', 'https'],
  ['certificate', 'cert'],
  ['expire', 'expiry', 'expiration', 'ttl', 'lifetime'],
  ['delete', 'remove', 'purge', 'cleanup', 'clean'],
  ['memory', 'ram'],
  ['evict', 'eviction', 'kicked'],
  ['persist', 'persistence', 'durable', 'durability', 'disk', 'survive'],
  ['snapshot', 'backup', 'dump', 'rdb'],
  ['monitor', 'metric', 'metrics', 'dashboard', 'observability', 'observe', 'notice'],
  ['identifier', 'id', 'uuid'],
  ['collision', 'clash', 'collide'],
  ['order', 'sort', 'sortable', 'chronological'],
  ['rank', 'ranking', 'relevance', 'relevant'],
  ['shutdown', 'sigterm', 'terminate', 'stop'],
  ['outage', 'unavailable', 'downtime'],
  ['poll', 'polling'],
  ['worker', 'consumer', 'processor'],
  ['endpoint', 'route'],
  ['post', 'create', 'creating'],
  ['caller', 'client'],
  ['response', 'reply', 'answer'],
  ['acknowledge', 'ack', 'acknowledged'],
  ['version', 'revision'],
  ['setting', 'config', 'configuration', 'configure', 'option', 'directive', 'flag'],
  ['recommend', 'recommended', 'usual', 'advice'],
  ['replica', 'instance', 'scale'],
  ['keyword', 'term'],
  ['retry', 'attempt', 'reattempt'],
  ['history', 'timeline'],
  ['app', 'application'],
  ['cost', 'price', 'pricing', 'charge', 'pay', 'expensive', 'cheap'],
  ['log', 'logged', 'print', 'printed'],
  ['grow', 'growth', 'bigger', 'larger', 'balloon'],
  ['enable', 'switch', 'activate'],
  ['moment', 'instant', 'time'],
  ['read', 'load', 'fetch'],
  ['write', 'save'],
  ['percent', 'percentage']
]

/** A match through a group word counts for this share of the word asked. */
export const ALTERNATIVE_WEIGHT = 0.8

const ALTERNATIVES = new Map<string, Set<string>>()
for (const group of GROUPS) {
  const stems = group.map(stem)
  for (const member of stems) {
    const known = ALTERNATIVES.get(member) ?? new Set<string>()
    for (const other of stems) if (other !== member) known.add(other)
    ALTERNATIVES.set(member, known)
  }
}

/** The stems that stand for the same idea as `termStem` (not itself); empty when none. */
export function alternativesOf (termStem: string): string[] {
  return [...(ALTERNATIVES.get(termStem) ?? [])]
}
