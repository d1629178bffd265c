import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { filterCovers, parseShared, topicMatches, validateTopicFilter, validateTopicName } from '../../../src/lib/policy/filter.js'

describe('validateTopicName', () => {
  const cases: Array<[string, string | null]> = [
    ['a', null],
    ['a/b', null],
    ['/', null], // two empty levels
    ['a//b', null],
    ['$SYS/broker', null],
    ['x'.repeat(65_535), null],
    ['', 'topic name is empty'],
    ['a/+', 'topic name contains a wildcard'],
    ['a/#', 'topic name contains a wildcard'],
    ['a+b', 'topic name contains a wildcard'],
    ['a\u0000b', 'topic name contains U+0000'],
    ['x'.repeat(65_536), 'topic name is longer than 65535 bytes'],
    ['é'.repeat(32_768), 'topic name is longer than 65535 bytes'], // 32,768 characters, 65,536 UTF-8 bytes
    ['a\uD800', 'topic name is not valid Unicode'],
    ['\uDC00a', 'topic name is not valid Unicode'],
    ['\uD83D\uDE00', null], // a correctly paired surrogate (😀)
  ]
  for (const [name, error] of cases) {
    test(`${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} → ${error ?? 'valid'}`, () => {
      assert.equal(validateTopicName(name), error)
    })
  }
})

describe('validateTopicFilter', () => {
  const cases: Array<[string, string | null]> = [
    ['#', null],
    ['+', null],
    ['a/#', null],
    ['+/+/#', null],
    ['/', null],
    ['a//+', null],
    ['$SYS/#', null],
    ['$share', null], // no slash: an ordinary filter level
    ['$share/g/a/#', null],
    ['$share/g/#', null],
    ['', 'topic filter is empty'],
    ['a#', "'#' must be the whole last level"],
    ['#/a', "'#' must be the whole last level"],
    ['a/#/b', "'#' must be the whole last level"],
    ['a/##', "'#' must be the whole last level"],
    ['a+', "'+' must be a whole level"],
    ['+a/b', "'+' must be a whole level"],
    ['a/b++', "'+' must be a whole level"],
    ['a\u0000', 'topic filter contains U+0000'],
    ['x'.repeat(65_536), 'topic filter is longer than 65535 bytes'],
    ['$share/g', 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'],
    ['$share//a', 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'],
    ['$share/+/a', 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'],
    ['$share/g#/a', 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'],
    ['$share/g/', 'shared subscription needs $share/<group>/<filter> with a non-empty group without wildcards'],
    ['$share/g/a#', "'#' must be the whole last level"],
  ]
  for (const [filter, error] of cases) {
    test(`${JSON.stringify(filter.length > 20 ? `${filter.slice(0, 8)}…` : filter)} → ${error ?? 'valid'}`, () => {
      assert.equal(validateTopicFilter(filter), error)
    })
  }
})

describe('parseShared', () => {
  const cases: Array<[string, ReturnType<typeof parseShared>]> = [
    ['a/b', { filter: 'a/b' }],
    ['$share', { filter: '$share' }],
    ['$shared/g/a', { filter: '$shared/g/a' }],
    ['$SHARE/g/a', { filter: '$SHARE/g/a' }], // the prefix is case-sensitive
    ['$share/g/a/#', { group: 'g', filter: 'a/#' }],
    ['$share/group-1/$SYS/#', { group: 'group-1', filter: '$SYS/#' }],
    ['$share/g//', { group: 'g', filter: '/' }],
    ['$share/g', null],
    ['$share//a', null],
    ['$share/+/a', null],
    ['$share/#/a', null],
    ['$share/g/', null],
  ]
  for (const [input, expected] of cases) {
    test(`${input} → ${JSON.stringify(expected)}`, () => assert.deepStrictEqual(parseShared(input), expected))
  }
})

describe('topicMatches', () => {
  // Mostly the examples of MQTT 5 §4.7.
  const cases: Array<[string, string, boolean]> = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true], // '#' includes the parent level
    ['#', 'sport', true],
    ['#', '/', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['a/+/c', 'a//c', true],
    ['a/b', 'a/b/', false],
    ['a/b', 'a/b', true],
    ['a/b', 'A/b', false],
    ['#', '$SYS/monitor/Clients', false],
    ['#', '$SYS', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['$SYS/#', '$SYS/monitor/Clients', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['a/$x', 'a/$x', true],
    ['a/+', 'a/$x', true], // the '$' rule is about the first level only
    // Invalid input matches nothing.
    ['a/#/b', 'a/x/b', false],
    ['a#', 'a#', false],
    ['#', '', false],
    ['#', 'a/+', false],
    ['$share/g/#', 'x', false],
    ['$share/g/a', '$share/g/a', false],
  ]
  for (const [filter, topic, expected] of cases) {
    test(`${filter} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(topic)}`, () => {
      assert.equal(topicMatches(filter, topic), expected)
    })
  }
})

describe('filterCovers', () => {
  const cases: Array<[string, string, boolean]> = [
    ['sensors/#', 'sensors/+/temp', true],
    ['sensors/#', 'sensors/#', true],
    ['sensors/#', 'sensors', true], // '#' matches the parent level
    ['sensors/#', 'sensors/a/b/c', true],
    ['sensors/+/temp', 'sensors/#', false],
    ['sensors/+/temp', 'sensors/x/temp', true],
    ['sensors/+/temp', 'sensors/+/+', false],
    ['allowed', 'allowed/secret', false], // not a prefix match
    ['allowed', 'allowed/#', false],
    ['allowed', 'allowed', true],
    ['allowed/#', 'allowedX', false],
    ['#', '$SYS/#', false],
    ['#', '$SYS', false],
    ['+/#', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker/+', true],
    ['$SYS/#', '$SYS', true],
    ['$SYS/+', '$SYS/#', false],
    ['#', '#', true],
    ['#', '+/#', true],
    ['+/#', '#', true], // every topic has at least one level: '#' and '+/#' match the same topics
    ['#', '+', true],
    ['#', 'a/b', true],
    ['+', '#', false],
    ['+', '+', true],
    ['+', 'a', true],
    ['+', '$x', false],
    ['+/b', '$x/b', false],
    ['$x/+', '$x/b', true],
    ['+/+', '#', false],
    ['+/+', '+/+', true],
    ['a/+', 'a/b', true],
    ['a/b', 'a/+', false],
    ['a/#', 'a/+/#', true],
    ['a/+/#', 'a/#', false], // 'a' itself
    ['a/+/#', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/+', 'a', false],
    ['a', 'a/+', false],
    ['/#', '/', true],
    ['/+/#', '/#', true], // the only one-level topic '/#' matches would be the empty (invalid) name
    ['+/+/#', '/#', true],
    ['/+/#', '/', true],
    ['/+', '/', true],
    ['+/+', '/', true],
    ['', '', false],
    // Invalid input on either side covers nothing.
    ['a/#/b', 'a/x/b', false],
    ['#', 'a#', false],
    ['#', '', false],
    ['$share/g/#', '$share/g/a', false],
    ['#', '$share/g/a', false],
  ]
  for (const [grant, requested, expected] of cases) {
    test(`${JSON.stringify(grant)} ${expected ? 'covers' : 'does not cover'} ${JSON.stringify(requested)}`, () => {
      assert.equal(filterCovers(grant, requested), expected)
    })
  }
})

// ------------------------------------------------------------------------------------------------------
// Property-based and exhaustive checks over a tiny alphabet: literals a, b, $x and the empty level, plus
// the wildcards. Topics use the same literals, which always leaves a non-'$' value different from any one
// literal a filter can name, so a counterexample, if one exists, exists within this alphabet.

const FILTER_LEVELS = ['a', 'b', '$x', '', '+', '#'] as const
const TOPIC_LEVELS = ['a', 'b', '$x', ''] as const

const filterArb = fc
  .array(fc.constantFrom(...FILTER_LEVELS), { minLength: 1, maxLength: 5 })
  .map((levels) => levels.join('/'))
  .filter((f) => validateTopicFilter(f) === null)
const topicArb = fc
  .array(fc.constantFrom(...TOPIC_LEVELS), { minLength: 1, maxLength: 6 })
  .map((levels) => levels.join('/'))
  .filter((t) => validateTopicName(t) === null)

/** A topic that `filter` matches (when the '$' rule allows it): wildcards replaced by random levels. */
function instanceOf(filter: string): fc.Arbitrary<string> {
  const parts = filter.split('/').map((level) =>
    level === '+'
      ? fc.constantFrom(...TOPIC_LEVELS).map((l) => [l])
      : level === '#'
        ? fc.array(fc.constantFrom(...TOPIC_LEVELS), { maxLength: 3 })
        : fc.constant([level]),
  )
  return fc.tuple(...parts).map((chunks) => chunks.flat().join('/'))
}

function allTopics(maxDepth: number): string[] {
  const out: string[] = []
  let layer: string[][] = [[]]
  for (let depth = 1; depth <= maxDepth; depth++) {
    layer = layer.flatMap((prefix) => TOPIC_LEVELS.map((l) => [...prefix, l]))
    for (const levels of layer) {
      const t = levels.join('/')
      if (validateTopicName(t) === null) out.push(t)
    }
  }
  return out
}
const depth = (f: string): number => f.split('/').length
const topicsByDepth = new Map<number, string[]>()
const topicsUpTo = (d: number): string[] => {
  let topics = topicsByDepth.get(d)
  if (topics === undefined) topicsByDepth.set(d, (topics = allTopics(d)))
  return topics
}

/** Independent oracle: MQTT matching as a regular expression. */
function referenceMatch(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const levels = filter.split('/')
  const multi = levels[levels.length - 1] === '#'
  const fixed = (multi ? levels.slice(0, -1) : levels).map((l) => (l === '+' ? '[^/]*' : l.replace(/[$^.*+?()[\]{}|\\]/g, '\\$&')))
  const body = multi ? (fixed.length === 0 ? '.*' : `${fixed.join('/')}(?:/.*)?`) : fixed.join('/')
  return new RegExp(`^${body}$`, 's').test(topic)
}

describe('topicMatches properties', () => {
  test('agrees with a regular-expression reference', () => {
    fc.assert(
      fc.property(filterArb, topicArb, (f, t) => topicMatches(f, t) === referenceMatch(f, t)),
      { numRuns: 2000 },
    )
    const instances = filterArb.chain((f) => fc.tuple(fc.constant(f), instanceOf(f))).filter(([, t]) => validateTopicName(t) === null)
    fc.assert(fc.property(instances, ([f, t]) => topicMatches(f, t) === referenceMatch(f, t)))
  })
})

describe('filterCovers properties', () => {
  test('covers(g, r) ⇒ every topic r matches, g matches (random topics, biased towards r)', () => {
    const pair = fc.tuple(filterArb, filterArb)
    fc.assert(
      fc.property(
        pair.chain(([g, r]) => fc.tuple(fc.constant(g), fc.constant(r), fc.oneof(topicArb, instanceOf(r)))),
        ([g, r, t]) => !filterCovers(g, r) || !topicMatches(r, t) || topicMatches(g, t),
      ),
      { numRuns: 5000 },
    )
    // Same check on pairs where coverage holds, so the implication is not vacuous.
    const covered = pair.filter(([g, r]) => filterCovers(g, r))
    fc.assert(
      fc.property(covered.chain(([g, r]) => fc.tuple(fc.constant(g), fc.constant(r), instanceOf(r))), ([g, r, t]) => !topicMatches(r, t) || topicMatches(g, t)),
      { numRuns: 2000 },
    )
  })

  test('covers(g, r) ⇔ no witness topic up to depth max(|g|, |r|) + 1 (random filters, exhaustive topics)', () => {
    fc.assert(
      fc.property(filterArb, filterArb, (g, r) => {
        const topics = topicsUpTo(Math.max(depth(g), depth(r)) + 1)
        const witness = topics.find((t) => topicMatches(r, t) && !topicMatches(g, t))
        assert.equal(filterCovers(g, r), witness === undefined, `grant ${g}, requested ${r}, witness ${witness}`)
      }),
      { numRuns: 500 },
    )
  })

  test('exhaustively, for every pair of filters of up to 3 levels', () => {
    const filters: string[] = []
    let layer: string[][] = [[]]
    for (let d = 1; d <= 3; d++) {
      layer = layer.flatMap((prefix) => FILTER_LEVELS.map((l) => [...prefix, l]))
      for (const levels of layer) {
        const f = levels.join('/')
        if (validateTopicFilter(f) === null) filters.push(f)
      }
    }
    const topics = topicsUpTo(4)
    // Match sets as bitsets; coverage ⇔ matches(r) ⊆ matches(g) within this (sufficient) topic space.
    const words = Math.ceil(topics.length / 32)
    const sets = new Map<string, Uint32Array>()
    for (const f of filters) {
      const bits = new Uint32Array(words)
      topics.forEach((t, i) => {
        if (topicMatches(f, t)) bits[i >>> 5] = (bits[i >>> 5] as number) | (1 << (i & 31))
      })
      sets.set(f, bits)
    }
    let pairs = 0
    let covering = 0
    for (const g of filters) {
      const gs = sets.get(g) as Uint32Array
      for (const r of filters) {
        const rs = sets.get(r) as Uint32Array
        let subset = true
        for (let w = 0; w < words && subset; w++) subset = ((rs[w] as number) & ~(gs[w] as number)) === 0
        assert.equal(filterCovers(g, r), subset, `grant ${g}, requested ${r}`)
        pairs++
        if (subset) covering++
      }
    }
    assert.ok(filters.length > 150 && covering > 1000 && covering < pairs, `${filters.length} filters, ${covering}/${pairs} covering`)
  })

  test('reflexive, transitive, and on topic names equal to topicMatches', () => {
    fc.assert(fc.property(filterArb, (f) => filterCovers(f, f)))
    fc.assert(
      fc.property(filterArb, filterArb, filterArb, (a, b, c) => !(filterCovers(a, b) && filterCovers(b, c)) || filterCovers(a, c)),
      { numRuns: 3000 },
    )
    fc.assert(fc.property(filterArb, topicArb, (g, t) => filterCovers(g, t) === topicMatches(g, t)), { numRuns: 2000 })
  })
})
