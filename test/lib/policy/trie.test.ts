import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { overlaps, topicMatches, validateTopicFilter, validateTopicName } from '../../../src/lib/policy/filter.js'
import { TopicTrie } from '../../../src/lib/policy/trie.js'

/** A trie holding each filter as its own value. */
function trieOf(filters: readonly string[]): TopicTrie<string> {
  const trie = new TopicTrie<string>()
  for (const f of filters) trie.insert(f, f)
  return trie
}

function matches(trie: TopicTrie<string>, topic: string): string[] {
  const out: string[] = []
  trie.match(topic, out)
  return out.sort()
}

const FILTERS = [
  'a',
  'a/b',
  'a/b/c',
  'a/+',
  'a/+/c',
  'a/#',
  'a/b/#',
  '+',
  '+/b',
  '+/+',
  '#',
  '$SYS',
  '$SYS/+',
  '$SYS/#',
  '/',
  '/+',
  '/#',
  '+/',
  'a//c',
  'a/',
]

// topic → every filter of FILTERS that matches it, written out by hand (the brute-force test below checks the rest)
const EXPECTED: Array<[string, string[]]> = [
  ['a', ['a', 'a/#', '+', '#']], // `a/#` also matches its parent level
  ['a/b', ['a/b', 'a/+', 'a/#', 'a/b/#', '+/b', '+/+', '#']], // `a/b/#` matches `a/b` itself
  ['a/b/c', ['a/b/c', 'a/+/c', 'a/#', 'a/b/#', '#']],
  ['a/b/c/d', ['a/#', 'a/b/#', '#']], // `+` is one level, never two
  ['a/', ['a/', 'a/+', 'a/#', '+/+', '+/', '#']], // `+` matches an empty level
  ['a//c', ['a//c', 'a/+/c', 'a/#', '#']],
  ['/', ['/', '/+', '/#', '+/+', '+/', '#']],
  ['/b', ['/+', '/#', '+/b', '+/+', '#']],
  ['b', ['+', '#']],
  ['$SYS', ['$SYS', '$SYS/#']], // a first-level wildcard never matches a `$` topic
  ['$SYS/x', ['$SYS/+', '$SYS/#']], // … but a wildcard on a later level does
  ['$SYS/x/y', ['$SYS/#']],
  ['x/$SYS', ['+/+', '#']], // `$` only matters at the first level
]

describe('TopicTrie.match', () => {
  const trie = trieOf(FILTERS)
  for (const [topic, expected] of EXPECTED) {
    test(`${JSON.stringify(topic)} → ${expected.join(' ')}`, () => {
      assert.deepEqual(matches(trie, topic), [...expected].sort())
      // the table itself agrees with the reference matcher
      assert.deepEqual(FILTERS.filter((f) => topicMatches(f, topic)).sort(), [...expected].sort())
    })
  }

  test('an empty trie matches nothing; a literal does not match its prefix or extension', () => {
    assert.deepEqual(matches(new TopicTrie<string>(), 'a'), [])
    const t = trieOf(['a/b'])
    assert.deepEqual(matches(t, 'a'), [])
    assert.deepEqual(matches(t, 'a/b/c'), [])
    assert.deepEqual(matches(t, 'a/b/'), [])
    assert.deepEqual(matches(t, 'a/b'), ['a/b'])
  })

  test('inserting a filter again replaces its value', () => {
    const t = new TopicTrie<number>()
    t.insert('a/#', 1)
    t.insert('a/#', 2)
    const out: number[] = []
    t.match('a/x', out)
    assert.deepEqual(out, [2])
  })

  test('agrees with topicMatches over random filter sets and topics', () => {
    const level = fc.constantFrom('a', 'b', '$s', '', '+', '#')
    const filter = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    const topic = fc.array(fc.constantFrom('a', 'b', '$s', ''), { minLength: 1, maxLength: 5 }).map((l) => l.join('/')).filter((t) => validateTopicName(t) === null)
    fc.assert(
      fc.property(fc.uniqueArray(filter, { maxLength: 12 }), fc.array(topic, { minLength: 1, maxLength: 8 }), (filters, topics) => {
        const t = trieOf(filters)
        for (const x of topics) assert.deepEqual(matches(t, x), filters.filter((f) => topicMatches(f, x)).sort(), x)
      }),
      { numRuns: 500 },
    )
  })
})

describe('TopicTrie.remove', () => {
  test('removes only the named filter: its prefix, extensions, `+` and `#` siblings stay', () => {
    const names = ['p', 'p/q', 'p/+', 'p/#', 'p/q/#', 'p/q/r', '+/q', '#', '+']
    for (const gone of names) {
      const t = trieOf(names)
      t.remove(gone)
      const rest = names.filter((n) => n !== gone)
      for (const topic of ['p', 'p/q', 'p/q/r', 'p/x', 'x/q', 'x', '$p/q']) {
        assert.deepEqual(matches(t, topic), rest.filter((f) => topicMatches(f, topic)).sort(), `${topic} after removing ${gone}`)
      }
    }
  })

  test('removing an absent filter changes nothing (also one that only shares a path)', () => {
    const t = trieOf(['a/b/c', 'a/#'])
    for (const absent of ['a', 'a/b', 'a/+', 'a/b/c/d', '#', 'x/y', 'a/b/#', 'a/+/c']) t.remove(absent)
    assert.deepEqual(matches(t, 'a/b/c'), ['a/#', 'a/b/c'])
    assert.deepEqual(matches(t, 'a'), ['a/#'])
  })

  test('prunes every node it empties: removing all filters in any order leaves an empty trie', () => {
    const names = ['a/b/c', 'a/+/c', 'a/#', '+/+', '/', 'a//c', '$SYS/#', '#', 'a']
    fc.assert(
      fc.property(fc.shuffledSubarray(names, { minLength: names.length }), (order) => {
        const t = trieOf(names)
        assert.equal(t.empty, false)
        for (const n of order) {
          assert.equal(t.empty, false, `empty before removing ${n}`)
          t.remove(n)
        }
        assert.equal(t.empty, true)
      }),
      { numRuns: 200 },
    )
  })

  test('a filter removed and inserted again matches again (pruned nodes are rebuilt)', () => {
    const t = trieOf(['a/+/c'])
    t.remove('a/+/c')
    assert.deepEqual(matches(t, 'a/b/c'), [])
    t.insert('a/+/c', 'a/+/c')
    assert.deepEqual(matches(t, 'a/b/c'), ['a/+/c'])
  })

  test('random insert/remove sequences agree with a set of filters', () => {
    const level = fc.constantFrom('a', 'b', '', '+', '#')
    const filter = fc.array(level, { minLength: 1, maxLength: 3 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    const topics = ['a', 'b', 'a/b', 'a/', '/', '/a', 'a/b/a', 'b/b/b', '$a', '$a/b']
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), filter), { maxLength: 30 }), (ops) => {
        const t = new TopicTrie<string>()
        const set = new Set<string>()
        for (const [add, f] of ops) {
          if (add) {
            t.insert(f, f)
            set.add(f)
          } else {
            t.remove(f)
            set.delete(f)
          }
        }
        for (const x of topics) assert.deepEqual(matches(t, x), [...set].filter((f) => topicMatches(f, x)).sort(), x)
        assert.equal(t.empty, set.size === 0)
      }),
      { numRuns: 500 },
    )
  })

  test('clear empties it', () => {
    const t = trieOf(FILTERS)
    t.clear()
    assert.equal(t.empty, true)
    assert.deepEqual(matches(t, 'a/b'), [])
  })
})

describe('TopicTrie.overlapCandidates', () => {
  const candidates = (t: TopicTrie<string>, f: string) => {
    const out: string[] = []
    t.overlapCandidates(f, out)
    return out
  }

  test('returns every stored filter that overlaps the query (a superset is allowed, a miss is not)', () => {
    const level = fc.constantFrom('a', 'b', '$s', '', '+', '#')
    const filter = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    fc.assert(
      fc.property(fc.uniqueArray(filter, { maxLength: 12 }), filter, (stored, query) => {
        const got = new Set(candidates(trieOf(stored), query))
        for (const f of stored) if (overlaps(f, query)) assert.ok(got.has(f), `${f} ∩ ${query} missing`)
      }),
      { numRuns: 1000 },
    )
  })

  test('each stored filter comes back at most once, and disjoint literals are not walked into', () => {
    const t = trieOf(['a/b', 'a/#', 'a/+', '+/b', '#', 'x/y', 'a/b/c'])
    const all = candidates(t, '#')
    assert.deepEqual([...all].sort(), ['#', '+/b', 'a/#', 'a/+', 'a/b', 'a/b/c', 'x/y'])
    assert.equal(new Set(all).size, all.length)
    const ab = candidates(t, 'a/b')
    assert.equal(new Set(ab).size, ab.length)
    assert.ok(!ab.includes('x/y'))
    assert.ok(!ab.includes('a/b/c'))
    assert.deepEqual([...candidates(t, 'a/b/#')].sort(), ['#', 'a/#', 'a/+', 'a/b', 'a/b/c', '+/b'].sort())
  })
})
