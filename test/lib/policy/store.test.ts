import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FOREVER, topicId } from '../../../src/lib/chain/codec.js'
import { filterCovers, overlaps, topicMatches, validateTopicFilter, validateTopicName } from '../../../src/lib/policy/filter.js'
import { PolicyStore, type PolicyChange, type PolicyStoreOptions, type TopicInput } from '../../../src/lib/policy/store.js'
import type { Decision, DecisionReason } from '../../../src/lib/policy/types.js'
import { namespacesOverlap } from '../../../src/lib/policy/namespace.js'

const NOW = 1_800_000_000
const O = '0x00000000000000000000000000000000000000aa' // owner of everything below
const B = '0x00000000000000000000000000000000000000BB' // mixed case on purpose
const C = '0x00000000000000000000000000000000000000cc'
const D = '0x00000000000000000000000000000000000000dd' // holds nothing
const ZERO = '0x0000000000000000000000000000000000000000'

interface Spec {
  name: string
  owner?: string
  countries?: string[]
  sensitive?: boolean
  /** address → [pubExpiry, subExpiry] */
  grants?: Record<string, [bigint, bigint]>
  generation?: number
}

const T = (n: number) => BigInt(n)

function info(s: Spec): TopicInput {
  return { id: topicId(s.name), name: s.name, owner: s.owner ?? O, sensitive: s.sensitive ?? false, open: false, countries: s.countries ?? [], generation: s.generation ?? 0 }
}

function makeStore(specs: Spec[], opts: PolicyStoreOptions = {}, synced = true): PolicyStore {
  const store = new PolicyStore(opts)
  store.replaceAll({
    topics: specs.map(info),
    grants: specs.flatMap((s) => Object.entries(s.grants ?? {}).map(([client, [pubExpiry, subExpiry]]) => ({ topicId: topicId(s.name), client, pubExpiry, subExpiry }))),
  })
  if (synced) store.markSynced(1)
  return store
}

const POLICY: Spec[] = [
  { name: 'exact', grants: { [B]: [FOREVER, T(NOW)], [C]: [0n, T(NOW + 1)] } },
  { name: 'lapsed', grants: { [B]: [T(NOW - 10), 0n] } },
  { name: 'geo', countries: ['DE', 'GB'], grants: { [B]: [FOREVER, FOREVER] } },
  { name: 'sensors/#', grants: { [B]: [FOREVER, FOREVER] } },
  { name: 'sensors/+/temp', grants: { [C]: [0n, FOREVER] } },
  { name: 'allowed', grants: { [B]: [FOREVER, FOREVER] } },
  { name: '$SYS/#', grants: { [B]: [0n, FOREVER] } },
  { name: 'secret', sensitive: true, grants: { [B]: [FOREVER, 0n] } },
]

type Op = 'pub' | 'sub' | 'recv'
type Row = [Op, string, string, string | null, boolean, DecisionReason, string?]

function decide(store: PolicyStore, op: Op, who: string, what: string, country: string | null): Decision {
  if (op === 'pub') return store.canPublish(who, what, country, NOW)
  if (op === 'recv') return store.canReceive(who, what, country, NOW)
  return store.canSubscribe(who, what, country, NOW)
}

function table(title: string, store: PolicyStore, rows: Row[]) {
  describe(title, () => {
    for (const [op, who, what, country, allowed, reason, rule] of rows) {
      test(`${op} ${who.slice(-2)} ${JSON.stringify(what)} ${country ?? '-'} → ${allowed ? 'allow' : 'deny'} ${reason}`, () => {
        const d = decide(store, op, who, what, country)
        assert.equal(d.allowed, allowed)
        assert.equal(d.reason, reason)
        if (rule !== undefined) assert.equal(d.rule, rule)
      })
    }
  })
}

table('decisions (unregistered topics denied)', makeStore(POLICY), [
  // owner rights and grants
  ['pub', O, 'exact', null, true, 'owner', 'exact'],
  ['recv', O, 'exact', null, true, 'owner', 'exact'],
  ['sub', O, 'exact', null, true, 'owner', 'exact'],
  ['pub', B, 'exact', null, true, 'granted', 'exact'],
  ['pub', B.toLowerCase(), 'exact', null, true, 'granted', 'exact'],
  ['pub', C, 'exact', null, false, 'no-grant', 'exact'], // C holds subscribe only
  ['pub', D, 'exact', null, false, 'no-grant', 'exact'],
  // expiry: valid while now < expiry
  ['recv', B, 'exact', null, false, 'expired', 'exact'], // now == expiry
  ['sub', B, 'exact', null, false, 'expired', 'exact'],
  ['recv', C, 'exact', null, true, 'granted', 'exact'], // now == expiry - 1
  ['pub', B, 'lapsed', null, false, 'expired', 'lapsed'],
  ['recv', B, 'lapsed', null, false, 'no-grant', 'lapsed'],
  // countries
  ['pub', B, 'geo', 'GB', true, 'granted', 'geo'],
  ['pub', B, 'geo', 'gb', true, 'granted', 'geo'],
  ['sub', B, 'geo', 'DE', true, 'granted', 'geo'],
  ['pub', B, 'geo', 'FR', false, 'country', 'geo'],
  ['sub', B, 'geo', 'FR', false, 'country', 'geo'],
  ['pub', B, 'geo', null, false, 'country', 'geo'], // unknown country is not a listed one
  ['pub', O, 'geo', 'FR', false, 'country', 'geo'], // the rule binds the owner too
  ['pub', D, 'geo', 'FR', false, 'no-grant', 'geo'], // country only matters to someone with rights
  // wildcard entries
  ['pub', B, 'sensors/a/b', null, true, 'granted', 'sensors/#'],
  ['pub', B, 'sensors', null, true, 'granted', 'sensors/#'], // a/# also matches a
  ['recv', C, 'sensors/x/temp', null, true, 'granted', 'sensors/+/temp'],
  ['recv', D, 'sensors/x/temp', null, false, 'no-grant'],
  ['sub', B, 'sensors/+/temp', null, true, 'granted', 'sensors/#'],
  ['sub', B, 'sensors/#', null, true, 'granted', 'sensors/#'],
  ['sub', C, 'sensors/+/temp', null, true, 'granted', 'sensors/+/temp'],
  ['sub', C, 'sensors/x/temp', null, true, 'granted', 'sensors/+/temp'],
  ['sub', C, 'sensors/#', null, false, 'no-grant'], // a grant on sensors/+/temp does not cover sensors/#
  ['sub', C, 'sensors/+', null, false, 'no-grant'],
  // prefix is not filter
  ['pub', B, 'allowed', null, true, 'granted', 'allowed'],
  ['pub', B, 'allowed/secret', null, false, 'unregistered'],
  ['sub', B, 'allowed', null, true, 'granted', 'allowed'],
  ['sub', B, 'allowed/#', null, false, 'no-grant', 'allowed'], // overlaps (matches `allowed`) but is not covered
  ['sub', B, 'allowed/+', null, false, 'unregistered'],
  // $ topics
  ['recv', B, '$SYS/broker/load', null, true, 'granted', '$SYS/#'],
  ['sub', B, '$SYS/#', null, true, 'granted', '$SYS/#'],
  ['sub', B, '$SYS/+/load', null, true, 'granted', '$SYS/#'],
  ['pub', B, '$SYS/broker/load', null, false, 'no-grant', '$SYS/#'],
  ['pub', B, '$other', null, false, 'unregistered'],
  // unregistered, broad filters
  ['pub', O, 'nowhere', null, false, 'unregistered'],
  ['sub', B, 'nowhere/#', null, false, 'unregistered'],
  ['sub', B, '#', null, false, 'no-grant'],
  ['sub', B, '+', null, false, 'no-grant'],
  ['sub', O, '#', null, false, 'no-grant'], // owns everything registered, but # also matches unregistered topics
  // invalid input
  ['pub', B, 'a/+', null, false, 'invalid'],
  ['pub', B, 'sensors/#', null, false, 'invalid'],
  ['pub', B, '', null, false, 'invalid'],
  ['pub', B, 'a\u0000b', null, false, 'invalid'],
  ['recv', B, 'a\uD800', null, false, 'invalid'],
  ['sub', B, '', null, false, 'invalid'],
  ['sub', B, 'sensors/#/x', null, false, 'invalid'],
  ['sub', B, 'sensors/te+', null, false, 'invalid'],
  ['sub', B, '$share/g/sensors/#', null, false, 'invalid'], // caller must strip $share/ first
])

table('decisions (unregistered topics allowed)', makeStore(POLICY, { unregisteredTopics: 'allow' }), [
  ['pub', D, 'nowhere', null, true, 'unregistered-allowed'],
  ['pub', D, 'allowed/secret', null, true, 'unregistered-allowed'],
  ['pub', D, 'exact', null, false, 'no-grant', 'exact'], // registered topics keep their rules
  ['pub', B, 'geo', 'FR', false, 'country', 'geo'],
  ['sub', D, 'nowhere/#', null, true, 'unregistered-allowed'],
  ['sub', D, '#', null, false, 'no-grant'], // would deliver registered topics
  ['sub', D, '+', null, false, 'no-grant'],
  ['sub', D, 'sensors/+', null, false, 'no-grant'],
  ['sub', B, 'allowed/#', null, true, 'unregistered-allowed'], // overlaps only `allowed`, which B may read
  ['sub', C, 'allowed/#', null, false, 'no-grant', 'allowed'],
  ['sub', B, '#', null, false, 'no-grant'], // B lacks subscribe on e.g. `secret`
  ['sub', B, 'sensors/#', null, true, 'granted', 'sensors/#'],
  ['sub', C, 'sensors/#', null, false, 'no-grant'],
  ['sub', D, '$SYS/#', null, false, 'no-grant', '$SYS/#'],
  ['sub', D, '$other/#', null, false, 'unregistered'], // "unregistered: allow" never opens $ topics
  ['pub', D, '$other', null, false, 'unregistered'],
])

describe('first-level wildcards and $ topics', () => {
  const store = makeStore([{ name: '#', grants: { [B]: [FOREVER, FOREVER] } }])
  test('a grant on # covers ordinary topics and filters', () => {
    assert.equal(store.canPublish(B, 'x/y', null, NOW).reason, 'granted')
    assert.equal(store.canSubscribe(B, '#', null, NOW).reason, 'granted')
    assert.equal(store.canSubscribe(B, '+/y', null, NOW).reason, 'granted')
  })
  test('but never a $ topic', () => {
    assert.equal(store.canPublish(B, '$SYS/x', null, NOW).reason, 'unregistered')
    assert.equal(store.canReceive(B, '$SYS', null, NOW).reason, 'unregistered')
    assert.equal(store.canSubscribe(B, '$SYS/#', null, NOW).reason, 'unregistered')
  })
  test('a + first level skips $ topics too', () => {
    const plus = makeStore([{ name: '+/status', grants: { [B]: [FOREVER, FOREVER] } }])
    assert.equal(plus.canPublish(B, 'dev/status', null, NOW).reason, 'granted')
    assert.equal(plus.canPublish(B, '/status', null, NOW).reason, 'granted') // empty first level
    assert.equal(plus.canPublish(B, '$dev/status', null, NOW).reason, 'unregistered')
  })
  test('with only $SYS/# registered, # overlaps nothing registered', () => {
    const sys = makeStore([{ name: '$SYS/#' }], { unregisteredTopics: 'allow' })
    assert.equal(sys.canSubscribe(D, '#', null, NOW).reason, 'unregistered-allowed')
    assert.equal(sys.canSubscribe(D, '$SYS/x', null, NOW).reason, 'no-grant')
  })
})

describe('sensitive flag', () => {
  const store = makeStore(POLICY)
  test('set when any matching entry is sensitive, allowed or not', () => {
    assert.deepEqual(store.canPublish(B, 'secret', null, NOW), { allowed: true, reason: 'granted', rule: 'secret', sensitive: true })
    assert.equal(store.canPublish(D, 'secret', null, NOW).sensitive, true)
    assert.equal(store.canSubscribe(B, 'secret', null, NOW).sensitive, true)
    assert.equal(store.canPublish(B, 'exact', null, NOW).sensitive, false)
  })
  test('a subscription is sensitive when it overlaps a sensitive entry', () => {
    const s = makeStore([{ name: 'a/#', grants: { [B]: [0n, FOREVER] } }, { name: 'a/secret', sensitive: true }])
    const d = s.canSubscribe(B, 'a/+', null, NOW)
    assert.equal(d.allowed, true)
    assert.equal(d.sensitive, true)
    assert.equal(s.canSubscribe(B, 'a/open', null, NOW).sensitive, false)
  })
  test('the best reason wins across entries: country > expired > no-grant', () => {
    const s = makeStore([
      { name: 'r/#', grants: { [B]: [T(NOW - 1), 0n] } },
      { name: 'r/+', countries: ['GB'], grants: { [B]: [FOREVER, 0n] } },
      { name: 'r/x' },
    ])
    assert.equal(s.canPublish(B, 'r/x', 'FR', NOW).reason, 'country')
    assert.equal(s.canPublish(B, 'r/x/y', 'FR', NOW).reason, 'expired')
    assert.equal(s.canPublish(C, 'r/x', 'GB', NOW).reason, 'no-grant')
    assert.equal(s.canPublish(B, 'r/x', 'GB', NOW).reason, 'granted')
  })
})

describe('before the first load', () => {
  test('fails closed', () => {
    const store = makeStore(POLICY, {}, false)
    for (const d of [store.canPublish(O, 'exact', null, NOW), store.canReceive(O, 'exact', null, NOW), store.canSubscribe(O, 'exact', null, NOW), store.canPublish(O, 'a/+', null, NOW)]) {
      assert.deepEqual(d, { allowed: false, reason: 'not-synced', sensitive: false })
    }
    assert.equal(store.stats().synced, false)
    store.markSynced(7)
    assert.equal(store.canPublish(O, 'exact', null, NOW).reason, 'owner')
    assert.equal(store.stats().block, 7)
  })
  test('fails open only when asked, and still refuses invalid input', () => {
    const store = new PolicyStore({ failOpen: true })
    assert.deepEqual(store.canPublish(D, 'x', null), { allowed: true, reason: 'not-synced', sensitive: false })
    assert.equal(store.canSubscribe(D, '#', null).allowed, true)
    assert.equal(store.canPublish(D, 'a/#', null).reason, 'invalid')
    assert.equal(store.canSubscribe(D, 'a#', null).reason, 'invalid')
  })
})

describe('mutators', () => {
  test('upsert, grants, generation, removal, stats and change events', () => {
    const store = makeStore([])
    const changes: PolicyChange[] = []
    store.on('change', (c) => changes.push(c))

    store.upsertTopic(info({ name: 'm/#' }))
    assert.deepEqual(changes.pop(), { topics: ['m/#'], clients: [] })
    store.upsertTopic(info({ name: 'm/#' }))
    assert.equal(changes.length, 0, 'an identical upsert changes nothing')

    assert.equal(store.setGrant(topicId('m/#'), B, FOREVER, 0n), true)
    assert.deepEqual(changes.pop(), { topics: ['m/#'], clients: [B.toLowerCase()] })
    assert.equal(store.canPublish(B, 'm/1', null, NOW).allowed, true)
    assert.deepEqual(store.grant('m/#', B), { pubExpiry: FOREVER, subExpiry: 0n })
    assert.deepEqual(store.stats().topics, 1)
    assert.deepEqual(store.stats().grants, 1)
    assert.equal(store.setGrant(topicId('unknown'), B, FOREVER, 0n), false)

    store.upsertTopic(info({ name: 'm/#', countries: ['GB'] }))
    assert.deepEqual(changes.pop(), { topics: ['m/#'], clients: [] })
    assert.equal(store.canPublish(B, 'm/1', 'FR', NOW).reason, 'country')

    store.setGrant(topicId('m/#'), B, 0n, 0n)
    assert.deepEqual(changes.pop(), { topics: ['m/#'], clients: [B.toLowerCase()] })
    assert.equal(store.stats().grants, 0)
    assert.equal(store.canPublish(B, 'm/1', 'GB', NOW).reason, 'no-grant')

    store.setGrant(topicId('m/#'), C, FOREVER, FOREVER)
    store.upsertTopic(info({ name: 'm/#', generation: 1 })) // removed and registered again
    assert.equal(store.grant('m/#', C), undefined, 'a new generation drops the old grants')
    assert.equal(store.stats().grants, 0)

    store.upsertTopic(info({ name: 'm/#', owner: C }))
    assert.equal(store.canPublish(C, 'm/1', null, NOW).reason, 'owner')
    assert.equal(store.canPublish(O, 'm/1', null, NOW).reason, 'no-grant')

    changes.length = 0
    store.setGrant(topicId('m/#'), B, FOREVER, FOREVER)
    store.removeTopic(topicId('m/#'))
    assert.deepEqual(changes.at(-1), { topics: ['m/#'], clients: [B.toLowerCase()] }, 'one change: the topic and its former members')
    assert.equal(store.canPublish(C, 'm/1', null, NOW).reason, 'unregistered')
    assert.equal(store.entry('m/#'), undefined)
    assert.deepEqual(store.stats().topics, 0)
    assert.deepEqual(store.stats().grants, 0)

    store.upsertTopic(info({ name: 'z' }))
    store.upsertTopic({ ...info({ name: 'z' }), owner: ZERO })
    assert.equal(store.entry('z'), undefined, 'owner 0 means removed')
  })

  test('replaceAll and batch emit one change each', () => {
    const store = makeStore(POLICY)
    const changes: PolicyChange[] = []
    store.on('change', (c) => changes.push(c))
    store.replaceAll({ topics: [info({ name: 'only' })], grants: [{ topicId: topicId('only'), client: B, pubExpiry: FOREVER, subExpiry: 0n }] })
    assert.equal(changes.length, 1)
    assert.ok(changes[0]?.topics.includes('exact') && changes[0].topics.includes('only'))
    assert.ok(changes[0]?.clients.includes(B.toLowerCase()))
    assert.equal(store.canPublish(B, 'exact', null, NOW).reason, 'unregistered')
    assert.equal(store.canPublish(B, 'only', null, NOW).reason, 'granted')
    store.batch(() => {
      store.setGrant(topicId('only'), C, FOREVER, 0n)
      store.setGrant(topicId('only'), D, FOREVER, 0n)
    })
    assert.equal(changes.length, 2)
    assert.deepEqual(changes[1], { topics: ['only'], clients: [C, D] })
  })

  test('removing entries prunes the index without disturbing neighbours', () => {
    const names = ['p/q', 'p/+', 'p/#', 'p/q/#', '+/q', '#', 'p']
    const store = makeStore(names.map((name) => ({ name })))
    for (const name of names) {
      store.removeTopic(topicId(name))
      const rest = names.slice(names.indexOf(name) + 1)
      for (const topic of ['p', 'p/q', 'p/q/r', 'x/q', '$p/q']) {
        assert.deepEqual(store.matching(topic).sort(), rest.filter((f) => topicMatches(f, topic)).sort(), `${topic} after removing ${name}`)
      }
    }
  })
})

// ---------------------------------------------------------------- overlaps

describe('overlaps', () => {
  const cases: Array<[string, string, boolean]> = [
    ['#', 'a/b', true],
    ['#', '$SYS/x', false],
    ['+/#', '$SYS/#', false],
    ['$SYS/#', '$SYS/+', true],
    ['a/+', 'a/#', true],
    ['a/#', 'a', true],
    ['a/+', 'a', false],
    ['/#', '+', false], // only the empty topic name would match both
    ['/#', '+/#', true],
    ['a/+/c', 'a/b/+', true],
    ['a/+/c', 'a/b/d', false],
    ['allowed', 'allowed/secret', false],
    ['a/b', 'a/b', true],
    ['#', '#', true],
    ['a/#/b', 'a/b', false], // invalid
    ['$share/g/a', 'a', false],
  ]
  for (const [a, b, expected] of cases) {
    test(`${a} ∩ ${b} → ${expected}`, () => {
      assert.equal(overlaps(a, b), expected)
      assert.equal(overlaps(b, a), expected)
    })
  }

  test('agrees with brute force over every pair of filters up to 3 levels', () => {
    const filterLevels = ['a', '$s', '', '+', '#']
    const topicLevels = ['a', 'b', '$s', '']
    const seq = (levels: string[], depth: number): string[] =>
      depth === 0 ? [] : [...levels, ...seq(levels, depth - 1).flatMap((rest) => levels.map((l) => `${l}/${rest}`))]
    const filters = [...new Set(seq(filterLevels, 3))].filter((f) => validateTopicFilter(f) === null)
    // A common topic, if any, has no more levels than the longer filter: three suffice.
    const topics = [...new Set(seq(topicLevels, 3))].filter((t) => validateTopicName(t) === null)
    const matched = new Map(filters.map((f) => [f, new Set(topics.filter((t) => topicMatches(f, t)))]))
    let checked = 0
    for (const a of filters) {
      const ma = matched.get(a) as Set<string>
      for (const b of filters) {
        const mb = matched.get(b) as Set<string>
        let expected = false
        for (const t of ma) if (mb.has(t)) expected = true
        assert.equal(overlaps(a, b), expected, `${a} ∩ ${b}`)
        checked++
      }
    }
    assert.ok(checked > 10_000)
  })

  test('filterCovers implies overlaps; a topic overlaps exactly the filters that match it', () => {
    const level = fc.constantFrom('a', 'b', '$s', '', '+', '#')
    const filter = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
    const topic = fc.array(fc.constantFrom('a', 'b', '$s', ''), { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((t) => validateTopicName(t) === null)
    fc.assert(fc.property(filter, filter, (g, r) => !filterCovers(g, r) || overlaps(g, r)))
    fc.assert(fc.property(filter, topic, (f, t) => overlaps(f, t) === topicMatches(f, t)))
  })
})

// ---------------------------------------------------------------- indexed lookup vs naive scan

interface RefEntry {
  name: string
  owner: string
  countries: string[]
  sensitive: boolean
  grants: Map<string, [bigint, bigint]>
}

const RANK: Record<string, number> = { 'no-grant': 1, expired: 2, country: 3, granted: 4, owner: 5 }

function refVerdict(e: RefEntry, addr: string, role: 0 | 1, country: string | null, now: number): DecisionReason {
  let has: DecisionReason
  if (e.owner.toLowerCase() === addr.toLowerCase()) has = 'owner'
  else {
    const g = e.grants.get(addr.toLowerCase())
    const exp = g ? g[role] : 0n
    if (exp === 0n) return 'no-grant'
    if (exp <= BigInt(now)) return 'expired'
    has = 'granted'
  }
  if (e.countries.length > 0 && (country === null || !e.countries.includes(country))) return 'country'
  return has
}

const best = (reasons: DecisionReason[]) => reasons.reduce((a, b) => ((RANK[b] as number) > (RANK[a] as number) ? b : a))

/**
 * The semantics, written as plainly as possible: a scan over every entry. `all` is in registration order;
 * only the effective ones decide (no earlier entry of another owner overlaps them, namespace rule).
 */
function reference(all: RefEntry[], mode: 'deny' | 'allow', op: Op, addr: string, what: string, country: string | null, now: number) {
  const entries = all.filter((e, i) => !all.some((x, j) => j < i && x.owner.toLowerCase() !== e.owner.toLowerCase() && namespacesOverlap(x.name, e.name)))
  // "unregistered: allow" never opens $ topics ($SYS and other broker internals).
  const open = mode === 'allow' && !what.startsWith('$')
  const unregistered = { allowed: open, reason: (open ? 'unregistered-allowed' : 'unregistered') as DecisionReason }
  if (op !== 'sub') {
    if (validateTopicName(what) !== null) return { allowed: false, reason: 'invalid' as DecisionReason, sensitive: false }
    const matching = entries.filter((e) => topicMatches(e.name, what))
    if (matching.length === 0) return { ...unregistered, sensitive: false }
    const reason = best(matching.map((e) => refVerdict(e, addr, op === 'pub' ? 0 : 1, country, now)))
    return { allowed: reason === 'owner' || reason === 'granted', reason, sensitive: matching.some((e) => e.sensitive) }
  }
  if (validateTopicFilter(what) !== null || what.startsWith('$share/')) return { allowed: false, reason: 'invalid' as DecisionReason, sensitive: false }
  const overlapping = entries.filter((e) => overlaps(e.name, what))
  const sensitive = overlapping.some((e) => e.sensitive)
  if (overlapping.length === 0) return { ...unregistered, sensitive }
  const covering = overlapping.filter((e) => filterCovers(e.name, what))
  if (covering.length > 0) {
    // Something covers the whole filter: its best verdict decides, in either mode.
    const reason = best(covering.map((e) => refVerdict(e, addr, 1, country, now)))
    return { allowed: reason === 'owner' || reason === 'granted', reason, sensitive }
  }
  const allRights = overlapping.every((e) => ['owner', 'granted'].includes(refVerdict(e, addr, 1, country, now)))
  if (open && allRights) return { allowed: true, reason: 'unregistered-allowed' as DecisionReason, sensitive }
  return { allowed: false, reason: 'no-grant' as DecisionReason, sensitive }
}

describe('indexed lookup equals a naive scan', () => {
  const ADDRS = [O, B, C, D]
  const level = fc.constantFrom('a', 'b', '$s', '', '+', '#')
  const filterArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((f) => validateTopicFilter(f) === null)
  const topicArb = fc.array(fc.constantFrom('a', 'b', 'c', '$s', ''), { minLength: 1, maxLength: 5 }).map((l) => l.join('/'))
  const expiry = fc.constantFrom(0n, T(NOW - 1), T(NOW), T(NOW + 1), FOREVER)
  const entryArb = fc.record({
    name: filterArb,
    owner: fc.constantFrom(O, B, C),
    countries: fc.constantFrom([], ['GB'], ['DE', 'GB']),
    sensitive: fc.boolean(),
    grants: fc.array(fc.tuple(fc.constantFrom(B, C, D), expiry, expiry), { maxLength: 3 }),
  })
  const query = fc.record({
    op: fc.constantFrom<Op>('pub', 'recv', 'sub'),
    addr: fc.constantFrom(...ADDRS),
    topic: topicArb,
    filter: fc.oneof(filterArb, topicArb),
    country: fc.constantFrom(null, 'GB', 'FR'),
  })

  test('for random policies and queries', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(entryArb, { selector: (e) => e.name, maxLength: 12 }),
        fc.constantFrom<'deny' | 'allow'>('deny', 'allow'),
        fc.array(query, { minLength: 1, maxLength: 20 }),
        (raw, mode, queries) => {
          const entries: RefEntry[] = raw.map((e) => ({ ...e, countries: [...e.countries], grants: new Map(e.grants.map(([a, p, s]) => [a.toLowerCase(), [p, s] as [bigint, bigint]])) }))
          const store = new PolicyStore({ unregisteredTopics: mode })
          store.replaceAll({
            topics: entries.map((e) => info({ name: e.name, owner: e.owner, countries: e.countries, sensitive: e.sensitive })),
            grants: entries.flatMap((e) => [...e.grants].map(([client, [pubExpiry, subExpiry]]) => ({ topicId: topicId(e.name), client, pubExpiry, subExpiry }))),
          })
          store.markSynced(1)
          for (const q of queries) {
            const what = q.op === 'sub' ? q.filter : q.topic
            const got = decide(store, q.op, q.addr, what, q.country)
            const want = reference(entries, mode, q.op, q.addr, what, q.country, NOW)
            assert.deepEqual({ allowed: got.allowed, reason: got.reason, sensitive: got.sensitive }, want, `${q.op} ${q.addr} ${what} ${q.country} in ${mode}: ${entries.map((e) => e.name).join(' , ')}`)
            if (got.rule !== undefined) {
              const e = entries.find((x) => x.name === got.rule)
              assert.ok(e && (q.op === 'sub' ? overlaps(e.name, what) : topicMatches(e.name, what)), 'the rule is a deciding entry')
            }
          }
        },
      ),
      { numRuns: 1000 },
    )
  })
})

// ---------------------------------------------------------------- micro-benchmark (printed, not asserted)

describe('throughput with 10,000 entries', () => {
  test('decisions per second', () => {
    const specs: Spec[] = []
    for (let i = 0; i < 6_000; i++) specs.push({ name: `site/${i % 100}/dev/${i}`, grants: { [B]: [FOREVER, FOREVER] } })
    for (let i = 0; i < 3_000; i++) specs.push({ name: `site/${i % 100}/+/x${i}`, countries: i % 2 ? ['GB'] : [], grants: { [C]: [FOREVER, 0n] } })
    for (let i = 0; i < 900; i++) specs.push({ name: `fleet/${i}/#`, grants: { [B]: [T(NOW + 60), FOREVER] } })
    for (let i = 0; i < 100; i++) specs.push({ name: `+/status/${i}`, grants: { [D]: [0n, FOREVER] } })
    const store = makeStore(specs)
    assert.equal(store.stats().topics, 10_000)
    const topics = [
      ...Array.from({ length: 500 }, (_, i) => `site/${(i * 7) % 100}/dev/${(i * 7) % 6000}`),
      ...Array.from({ length: 200 }, (_, i) => `site/${i % 100}/dev/x${i}`),
      ...Array.from({ length: 200 }, (_, i) => `fleet/${i}/a/b`),
      ...Array.from({ length: 100 }, (_, i) => `dev${i}/status/${i}`),
    ]
    const filters = [...topics.slice(0, 300), 'site/1/+/x1', 'fleet/3/#', '+/status/4', 'site/+/dev/5']
    const run = (ms: number, fn: (i: number) => Decision) => {
      let n = 0
      let allowed = 0
      const end = performance.now() + ms
      while (performance.now() < end) {
        for (let k = 0; k < 1000; k++, n++) if (fn(n).allowed) allowed++
      }
      return { perSec: Math.round((n * 1000) / ms), allowed }
    }
    const pub = run(300, (i) => store.canPublish(i & 1 ? B : C, topics[i % topics.length] as string, 'GB', NOW))
    const recv = run(300, (i) => store.canReceive(B, topics[i % topics.length] as string, null))
    // Every topic new (the match cache never hits): the trie walk itself.
    const cold = run(300, (i) => store.canPublish(B, `site/${i % 100}/dev/${i}/${i & 7}`, null, NOW))
    const sub = run(300, (i) => store.canSubscribe(B, filters[i % filters.length] as string, 'GB', NOW))
    const fmt = (r: { perSec: number }) => `${r.perSec.toLocaleString('en')}/s`
    console.log(`policy store, 10,000 entries: publish ${fmt(pub)}, receive ${fmt(recv)} (repeated topics); publish ${fmt(cold)} (every topic new); subscribe ${fmt(sub)}`)
    assert.ok(pub.allowed > 0 && recv.allowed > 0 && sub.allowed > 0)
  })
})

describe('compact grants (two doubles per grant in reused slots)', () => {
  const topic = (name: string, generation = 0): TopicInput => ({ id: topicId(name), name, owner: '0x' + '11'.repeat(20), sensitive: false, open: false, countries: [], generation })
  test('a freed slot never carries its old expiries into a new grant; the grants view reads the slots', () => {
    const s = new PolicyStore()
    s.replaceAll({ topics: [topic('x/a'), topic('x/b')], grants: [] })
    s.markSynced(1)
    s.setGrant(topicId('x/a'), B, FOREVER, 0n)
    s.setGrant(topicId('x/a'), C, 0n, T(NOW + 5))
    s.removeTopic(topicId('x/a')) // frees both slots
    s.setGrant(topicId('x/b'), C, T(NOW + 9), 0n) // reuses one
    assert.equal(s.canReceive(C, 'x/b', null, NOW).reason, 'no-grant', 'the reused slot does not keep the old subscribe expiry')
    assert.equal(s.canPublish(C, 'x/b', null, NOW).reason, 'granted')
    assert.deepEqual([...s.entry('x/b')!.grants], [[C, { pubExpiry: T(NOW + 9), subExpiry: 0n }]])
    assert.equal(s.entry('x/b')!.grants.size, 1)
    assert.deepEqual(s.grant('x/b', C.toUpperCase().replace('0X', '0x')), { pubExpiry: T(NOW + 9), subExpiry: 0n })
    s.upsertTopic(topic('x/b', 1)) // new generation: every grant dropped, slots freed
    assert.equal(s.stats().grants, 0)
    s.setGrant(topicId('x/b'), B, 0n, FOREVER)
    assert.equal(s.canPublish(B, 'x/b', null, NOW).reason, 'no-grant')
    assert.equal(s.canReceive(B, 'x/b', null, NOW).reason, 'granted')
    // Many grants grow the arrays past their first size and keep every expiry.
    for (let i = 0; i < 3000; i++) s.setGrant(topicId('x/b'), `0x${i.toString(16).padStart(40, '0')}`, T(NOW + i + 1), 0n)
    for (const i of [0, 1023, 1024, 2999]) assert.deepEqual(s.grant('x/b', `0x${i.toString(16).padStart(40, '0')}`), { pubExpiry: T(NOW + i + 1), subExpiry: 0n })
  })
  test('an expiry a double cannot hold exactly is refused, not rounded', () => {
    const s = new PolicyStore()
    s.replaceAll({ topics: [topic('x/a')], grants: [] })
    assert.throws(() => s.setGrant(topicId('x/a'), B, 2n ** 53n, 0n), RangeError)
    assert.equal(s.grant('x/a', B), undefined)
  })
})
