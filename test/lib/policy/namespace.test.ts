import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FOREVER, topicId } from '../../../src/lib/chain/codec.js'
import { overlaps, validateTopicFilter } from '../../../src/lib/policy/filter.js'
import { claimOf, namespacesOverlap } from '../../../src/lib/policy/namespace.js'
import { PolicyStore, type TopicInput } from '../../../src/lib/policy/store.js'

const NOW = 1_800_000_000
const O = '0x00000000000000000000000000000000000000aa' // registered first
const S = '0x00000000000000000000000000000000000000bb' // the squatter, later
const M = '0x00000000000000000000000000000000000000cc' // O's member
const G = '0x00000000000000000000000000000000000000dd' // S's grantee

interface Spec {
  name: string
  owner: string
  at: number
  sensitive?: boolean
  grants?: Record<string, [bigint, bigint]>
}

const info = (s: Spec): TopicInput => ({ id: topicId(s.name), name: s.name, owner: s.owner, sensitive: s.sensitive ?? false, open: false, countries: [], generation: 0, registeredAt: s.at })

function storeOf(specs: Spec[], unregisteredTopics: 'deny' | 'allow' = 'deny'): PolicyStore {
  const store = new PolicyStore({ unregisteredTopics })
  store.replaceAll({
    topics: specs.map(info),
    grants: specs.flatMap((s) => Object.entries(s.grants ?? {}).map(([client, [pubExpiry, subExpiry]]) => ({ topicId: topicId(s.name), client, pubExpiry, subExpiry }))),
  })
  store.markSynced(1)
  return store
}

const BOTH: [bigint, bigint] = [FOREVER, FOREVER]

describe('the namespace rule', () => {
  const cases: [string, string, boolean][] = [
    ['#', 'medical/records', true],
    ['+', 'medical/records', true],
    ['+/records', 'medical/records', true],
    ['medical/+', 'medical/records', true],
    ['medical/+', 'medical', true], // conservative: a filter claims its claim path
    ['vault/#', 'vault/data', true],
    ['vault/#', 'vault', true],
    ['vault/#', 'vault/+/x', true],
    ['vault/+/x', 'vault/data/y', true], // conservative: claims all of vault/
    ['vault/#', 'vaults/data', false],
    ['medical/records', 'medical/records/notes', false], // exact names claim only themselves
    ['medical/records', 'medical/billing', false],
    ['a/b', 'a/b', true],
    ['#', '$SYS/x', true], // conservative ($ topics are not matched by #, but claimed)
    ['/#', '/x', true],
    ['/#', 'x/', false],
  ]
  for (const [a, b, expected] of cases) {
    test(`${a} vs ${b} → ${expected ? 'overlap' : 'independent'}`, () => {
      assert.equal(namespacesOverlap(a, b), expected)
      assert.equal(namespacesOverlap(b, a), expected)
    })
  }
  test('claims', () => {
    assert.deepEqual(claimOf('a/b'), { path: ['a', 'b'], subtree: false })
    assert.deepEqual(claimOf('a/+/c'), { path: ['a'], subtree: true })
    assert.deepEqual(claimOf('#'), { path: [], subtree: true })
  })
  test('any two filters that can match a common topic overlap in the namespace rule', () => {
    const level = fc.constantFrom('a', 'b', '$s', '', '+', '#')
    const filter = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    fc.assert(fc.property(filter, filter, (a, b) => !overlaps(a, b) || namespacesOverlap(a, b)), { numRuns: 5000 })
  })
})

describe('a later overlapping entry of another owner gives nothing and takes nothing (policy store)', () => {
  // O registered medical/records and vault/# first, granting M; S came later with each shape, granting G.
  const shapes = ['#', '+', '+/records', 'medical/+', 'medical/#', 'vault/data', 'vault/+/x', 'vault', 'vault/data/#']
  for (const squat of shapes) {
    describe(`S registers ${squat} after O`, () => {
      const store = storeOf([
        { name: 'medical/records', owner: O, at: 1, grants: { [M]: BOTH } },
        { name: 'vault/#', owner: O, at: 2, grants: { [M]: BOTH } },
        { name: squat, owner: S, at: 3, sensitive: true, grants: { [G]: BOTH } },
      ])
      const victims = ['medical/records', 'vault/data', 'vault', 'vault/data/x'].filter((topic) => namespacesOverlap(squat, topic) || namespacesOverlap(squat, 'vault/#'))
      test('the squatter\'s entry is shadowed', () => {
        assert.equal(store.entry(squat)?.effective, false)
        assert.equal(store.entry('medical/records')?.effective, true)
        assert.equal(store.entry('vault/#')?.effective, true)
      })
      for (const topic of victims) {
        test(`neither S nor S's grantee may publish, receive or subscribe ${topic}`, () => {
          for (const who of [S, G]) {
            assert.equal(store.canPublish(who, topic, null, NOW).allowed, false, `${who} publish`)
            assert.equal(store.canReceive(who, topic, null, NOW).allowed, false, `${who} receive`)
            assert.equal(store.canSubscribe(who, topic, null, NOW).allowed, false, `${who} subscribe`)
          }
        })
        test(`O and O's member keep every right on ${topic}, and it is not made sensitive`, () => {
          assert.equal(store.canPublish(O, topic, null, NOW).reason, 'owner')
          for (const d of [store.canPublish(M, topic, null, NOW), store.canReceive(M, topic, null, NOW), store.canSubscribe(M, topic, null, NOW)]) {
            assert.equal(d.allowed, true)
            assert.equal(d.sensitive, false)
          }
        })
      }
      test('S cannot subscribe to its own filter and receive O\'s messages through it', () => {
        if (validateTopicFilter(squat) === null && (squat.includes('+') || squat.includes('#'))) assert.equal(store.canSubscribe(S, squat, null, NOW).allowed, false)
        assert.equal(store.canSubscribe(S, '#', null, NOW).allowed, false)
      })
    })
  }

  test('no denial of service: with unregistered topics allowed, a shadowed # denies O\'s member nothing', () => {
    const store = storeOf([
      { name: 'medical/#', owner: O, at: 1, grants: { [M]: [0n, FOREVER] } },
      { name: '#', owner: S, at: 2 },
    ], 'allow')
    assert.equal(store.canSubscribe(M, 'medical/+', null, NOW).allowed, true)
    assert.equal(store.canPublish(M, 'elsewhere', null, NOW).reason, 'unregistered-allowed') // S's # registers nothing
    assert.equal(store.canSubscribe(M, 'elsewhere/#', null, NOW).reason, 'unregistered-allowed')
  })

  test('no denial of service through a filter nothing covers: a shadowed squat is not an entry M "lacks"', () => {
    const store = storeOf([
      { name: 'medical/records', owner: O, at: 1, grants: { [M]: [0n, FOREVER] } },
      { name: 'medical/#', owner: S, at: 2 },
      { name: 'medical/+', owner: S, at: 3 },
    ], 'allow')
    // medical/+ matches medical/records (M may read it) and unregistered topics: allowed, whatever S registered.
    assert.deepEqual(store.canSubscribe(M, 'medical/+', null, NOW), { allowed: true, reason: 'unregistered-allowed', sensitive: false })
    assert.equal(store.canSubscribe(G, 'medical/+', null, NOW).allowed, false)
  })

  test('first registered wins: the same entries in the other order give the namespace to S', () => {
    const store = storeOf([
      { name: 'medical/records', owner: O, at: 5, grants: { [M]: BOTH } },
      { name: 'medical/#', owner: S, at: 4, grants: { [G]: BOTH } },
    ])
    assert.equal(store.entry('medical/records')?.effective, false)
    assert.equal(store.canPublish(G, 'medical/records', null, NOW).reason, 'granted')
    assert.equal(store.canPublish(M, 'medical/records', null, NOW).allowed, false)
    assert.equal(store.canPublish(O, 'medical/records', null, NOW).allowed, false)
  })

  test('one owner overlapping their own names: every entry is effective, grants add up', () => {
    const store = storeOf([
      { name: 'home/#', owner: O, at: 1, grants: { [M]: [0n, FOREVER] } },
      { name: 'home/kitchen', owner: O, at: 2, grants: { [M]: [FOREVER, 0n] } },
      { name: 'home/+/temp', owner: O, at: 3 },
    ])
    for (const name of ['home/#', 'home/kitchen', 'home/+/temp']) assert.equal(store.entry(name)?.effective, true)
    assert.equal(store.canPublish(M, 'home/kitchen', null, NOW).reason, 'granted')
    assert.equal(store.canReceive(M, 'home/kitchen', null, NOW).reason, 'granted')
  })

  test('incremental: removing the first owner\'s entry makes the later one effective; a transfer re-decides', () => {
    const store = storeOf([
      { name: 'vault/data', owner: O, at: 1, grants: { [M]: BOTH } },
      { name: 'vault/#', owner: S, at: 2, grants: { [G]: BOTH } },
    ])
    assert.equal(store.canPublish(G, 'vault/data', null, NOW).allowed, false)
    store.upsertTopic(info({ name: 'vault/data', owner: S, at: 1 })) // O hands vault/data to S
    assert.equal(store.entry('vault/#')?.effective, true)
    assert.equal(store.canPublish(G, 'vault/data', null, NOW).reason, 'granted')
    store.upsertTopic(info({ name: 'vault/data', owner: O, at: 1 }))
    assert.equal(store.entry('vault/#')?.effective, false)
    assert.equal(store.canPublish(G, 'vault/other', null, NOW).allowed, false)
    store.removeTopic(topicId('vault/data'))
    assert.equal(store.entry('vault/#')?.effective, true)
    assert.equal(store.canPublish(G, 'vault/other', null, NOW).reason, 'granted')
  })

  test('incremental changes leave the store as a fresh load of the same entries would', () => {
    const names = ['#', 'a', 'a/b', 'a/+', 'a/#', 'a/b/#', 'a/b/c', '+/b', 'b', 'b/#']
    const op = fc.record({ kind: fc.constantFrom('upsert', 'upsert', 'remove'), name: fc.constantFrom(...names), owner: fc.constantFrom(O, S, M), at: fc.integer({ min: 1, max: 6 }) })
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const store = storeOf([])
        const live = new Map<string, Spec>()
        for (const o of ops) {
          if (o.kind === 'remove') {
            store.removeTopic(topicId(o.name))
            live.delete(o.name)
          } else {
            store.upsertTopic(info(o))
            live.set(o.name, o)
          }
        }
        const fresh = storeOf([...live.values()])
        for (const name of names) assert.equal(store.entry(name)?.effective, fresh.entry(name)?.effective, `${name} after ${JSON.stringify(ops)}`)
        for (const topic of ['a', 'a/b', 'a/b/c', 'a/x', 'b', 'x/b']) assert.deepEqual(store.matching(topic).sort(), fresh.matching(topic).sort(), topic)
      }),
      { numRuns: 500 },
    )
  })
})
