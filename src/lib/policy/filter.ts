/**
 * MQTT topic names and topic filters (MQTT 5 §4.7, §4.8.2): validation, matching, and the algebra between
 * filters (does one cover the other, can they match a common topic).
 * Pure functions; this is the security boundary every publish, subscribe and delivery decision goes
 * through, so invalid input never matches or covers anything.
 */

const MAX_UTF8_BYTES = 65_535
const SHARE_PREFIX = '$share/'
/** A UTF-16 surrogate without its partner cannot be encoded as UTF-8, so no peer could have sent it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function commonStringError(s: string, what: string): string | null {
  if (s.length === 0) return `${what} is empty`
  if (s.includes('\u0000')) return `${what} contains U+0000`
  if (LONE_SURROGATE.test(s)) return `${what} is not valid Unicode`
  if (longerThanUtf8(s, MAX_UTF8_BYTES)) return `${what} is longer than ${MAX_UTF8_BYTES} bytes`
  return null
}

/** Whether a string without lone surrogates is more than `max` bytes as UTF-8; no Node API (these rules also run in the browser). */
function longerThanUtf8(s: string, max: number): boolean {
  if (s.length * 3 <= max) return false // at most 3 bytes per UTF-16 unit
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3 // a surrogate pair: 4 bytes
  }
  return n > max
}

/** Returns why `name` is not a valid topic name (the topic of a PUBLISH or will), or null if it is. */
export function validateTopicName(name: string): string | null {
  const err = commonStringError(name, 'topic name')
  if (err !== null) return err
  if (name.includes('+') || name.includes('#')) return 'topic name contains a wildcard'
  return null
}

/**
 * Returns why `filter` is not a valid topic filter, or null. A `$share/<group>/<filter>` filter is checked
 * as a shared subscription: a non-empty group without wildcards, and a valid inner filter.
 */
export function validateTopicFilter(filter: string): string | null {
  const err = commonStringError(filter, 'topic filter')
  if (err !== null) return err
  if (filter.startsWith(SHARE_PREFIX)) {
    const shared = parseShared(filter)
    if (shared === null) return 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'
    return levelsError(shared.filter)
  }
  return levelsError(filter)
}

/** Validation for a plain (non-shared) filter: a `$share/` filter passed here is a caller bug, so it fails. */
function plainFilterError(filter: string): string | null {
  const err = commonStringError(filter, 'topic filter')
  if (err !== null) return err
  if (filter.startsWith(SHARE_PREFIX)) return 'shared subscription filter: strip $share/<group>/ first'
  return levelsError(filter)
}

function levelsError(filter: string): string | null {
  if (filter.length === 0) return 'topic filter is empty'
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return "'#' must be the whole last level"
    if (level.includes('+') && level !== '+') return "'+' must be a whole level"
  }
  return null
}

export interface SharedFilter {
  /** Share name; absent for an ordinary filter. */
  group?: string
  /** The filter to authorise and match with. */
  filter: string
}

/**
 * Splits `$share/<group>/<filter>` into its group and filter; any other filter comes back as `{ filter }`.
 * Returns null for a filter that starts with `$share/` but is not a well-formed shared subscription (empty
 * group, wildcard in the group, nothing after the group): such a filter must be refused, not authorised as
 * a literal.
 */
export function parseShared(filter: string): SharedFilter | null {
  if (!filter.startsWith(SHARE_PREFIX)) return { filter }
  const slash = filter.indexOf('/', SHARE_PREFIX.length)
  if (slash === -1) return null
  const group = filter.slice(SHARE_PREFIX.length, slash)
  const inner = filter.slice(slash + 1)
  if (group.length === 0 || group.includes('+') || group.includes('#') || inner.length === 0) return null
  return { group, filter: inner }
}

/**
 * True if the topic name `topic` matches the plain topic filter `filter` (a `$share/` filter matches nothing:
 * strip it with parseShared first).
 * `+` matches exactly one level (possibly empty), `#` matches any number of levels including none, so `a/#`
 * also matches `a` (§4.7.1.2). A topic starting with `$` is not matched by a filter whose first level is a
 * wildcard (§4.7.2): `#` does not match `$SYS/x`.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (plainFilterError(filter) !== null || validateTopicName(topic) !== null) return false
  return levelsMatch(filter.split('/'), topic.split('/'))
}

function levelsMatch(f: readonly string[], t: readonly string[]): boolean {
  if ((t[0] as string).startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    const level = f[i] as string
    if (level === '#') return true // whatever is left of the topic, including nothing
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * True iff every topic name that `requested` matches is also matched by `grant`, i.e. a subscription to
 * `requested` can never deliver anything outside `grant`. Both are plain filters (strip `$share/` first with
 * parseShared); an invalid filter on either side covers nothing.
 *
 * Reasoning, level by level (g = grant levels, r = requested levels, i from 0). Topic names have at least one
 * level and are never empty, so `#` matches exactly what `+/#` matches, and `/#` exactly what `/+/#` matches
 * (its only one-level candidate would be the empty name). Rewriting both sides that way puts every `#` at
 * some i ≥ 1 behind a prefix whose i-level instances are valid topic names. By induction, every topic r
 * matches agrees with g on the levels before i. At level i:
 *   g[i] = '#'    → covered: g takes any remainder, including none (i ≥ 1, so the `$` rule is moot).
 *   r[i] = '#'    → not covered (g[i] ≠ '#'): r also matches an instance of its prefix that stops before
 *                   level i, and instances of any length beyond; a g without `#` here misses one of those.
 *   r ended       → r's topics have exactly i levels: covered iff g ended too.
 *   g ended       → r's topics have more levels: not covered.
 *   r[i] = '+'    → needs g[i] = '+' (a literal misses some other non-empty, non-`$` level value).
 *   r[i] literal  → g[i] = '+' or the same literal; except at i = 0 a '+' does not match a literal starting
 *                   with `$` (so `#` never covers `$SYS/#`, while `$SYS/#` covers `$SYS/x/+`).
 * test/lib/policy/filter.test.ts checks this against brute force over every pair of filters up to 3 levels.
 */
export function filterCovers(grant: string, requested: string): boolean {
  if (plainFilterError(grant) !== null || plainFilterError(requested) !== null) return false
  const g = normalizedLevels(grant)
  const r = normalizedLevels(requested)
  for (let i = 0; ; i++) {
    const gi = g[i]
    const ri = r[i]
    if (gi === '#') return true
    if (ri === '#') return false
    if (ri === undefined) return gi === undefined
    if (gi === undefined) return false
    if (ri === '+') {
      if (gi !== '+') return false
    } else if (gi === '+') {
      if (i === 0 && ri.startsWith('$')) return false
    } else if (gi !== ri) {
      return false
    }
  }
}

/**
 * True iff some valid topic name matches both plain filters `a` and `b` (a topic name is a filter without
 * wildcards, so this also answers "does filter a match topic b"). Invalid or `$share/` input overlaps nothing.
 *
 * Both sides are normalised as in filterCovers (`#` ≡ `+/#`, `/#` ≡ `/+/#`: a topic name is never empty), so a
 * `#` only ever stands for "any remainder, including none" behind a non-empty prefix. Level by level: a `#`
 * on either side means yes (the prefixes agreed so far, and the other side can be completed); both ended
 * means yes; one ended (without `#` next) means no; `+` meets anything (choose a fresh non-empty level),
 * except that at the first level a wildcard never meets a literal starting with `$` (§4.7.2); two literals
 * must be equal.
 */
export function overlaps(a: string, b: string): boolean {
  if (plainFilterError(a) !== null || plainFilterError(b) !== null) return false
  return levelsOverlap(normalizedLevels(a), normalizedLevels(b))
}

/** overlaps() on valid plain filters already split by normalizedLevels (for callers that keep the levels). */
export function levelsOverlap(x: readonly string[], y: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const xi = x[i]
    const yi = y[i]
    if (i === 0 && (isWild(xi) ? isDollar(yi) : isWild(yi) && isDollar(xi))) return false
    if (xi === '#' || yi === '#') return true
    if (xi === undefined || yi === undefined) return xi === yi
    if (xi === '+' || yi === '+') continue
    if (xi !== yi) return false
  }
}

const isWild = (level: string | undefined) => level === '+' || level === '#'
const isDollar = (level: string | undefined) => level !== undefined && level.startsWith('$')

/** A valid plain filter's levels with `#` and `/#` rewritten as `+/#` and `/+/#` (see filterCovers). */
export function normalizedLevels(filter: string): string[] {
  if (filter === '#') return ['+', '#']
  if (filter === '/#') return ['', '+', '#']
  return filter.split('/')
}
