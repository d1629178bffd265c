import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeCountries, FOREVER, topicId } from '../../../src/lib/chain/codec.js'
import { filterCovers, topicMatches } from '../../../src/lib/policy/filter.js'
import { PolicyStore } from '../../../src/lib/policy/store.js'
import { GrantHistory, type PolicyLog } from '../../../src/lib/audit/grants.js'

const A = '0x00000000000000000000000000000000000000aa'
const B = '0x00000000000000000000000000000000000000bb'
const C = '0x00000000000000000000000000000000000000cc'
const PEOPLE = [A, B, C]
const NAMES = ['a/b', 'a/+', 'a/#', '#', 'a/b/c', '+/b', 'x', 'a', '$SYS/x']
const TOPICS = ['a/b', 'a/b/c', 'a', 'x', 'z/b', 'a/q', '$SYS/x']
const FILTERS = ['a/+', 'a/#', 'a/b', '#', 'x', '+/b', 'a/b/c']
const T0 = 1_800_000_000

type Op =
  | { op: 'add'; name: number; owner: number; countries: boolean; open: boolean }
  | { op: 'remove'; name: number }
  | { op: 'transfer'; name: number; to: number }
  | { op: 'grant'; name: number; client: number; roles: number; expiry: number }
  | { op: 'revoke'; name: number; client: number; roles: number }
  | { op: 'join'; name: number; client: number; roles: number; expiry: number }
  | { op: 'countries'; name: number; on: boolean }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), name: fc.nat(NAMES.length - 1), owner: fc.nat(2), countries: fc.boolean(), open: fc.boolean() }),
  fc.record({ op: fc.constant('remove' as const), name: fc.nat(NAMES.length - 1) }),
  fc.record({ op: fc.constant('transfer' as const), name: fc.nat(NAMES.length - 1), to: fc.nat(2) }),
  fc.record({ op: fc.constant('grant' as const), name: fc.nat(NAMES.length - 1), client: fc.nat(2), roles: fc.integer({ min: 1, max: 3 }), expiry: fc.integer({ min: -1, max: 400 }) }),
  fc.record({ op: fc.constant('revoke' as const), name: fc.nat(NAMES.length - 1), client: fc.nat(2), roles: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant('join' as const), name: fc.nat(NAMES.length - 1), client: fc.nat(2), roles: fc.integer({ min: 1, max: 3 }), expiry: fc.integer({ min: -1, max: 400 }) }),
  fc.record({ op: fc.constant('countries' as const), name: fc.nat(NAMES.length - 1), on: fc.boolean() }),
)

/**
 * Turns random operations into the logs the contract would emit (ops on unregistered names are skipped, as
 * the contract reverts them; overlapping registrations by other owners are kept: the store must shadow them),
 * one block per op, 10 s apart. Returns the logs and, for a cut-off time, a store loaded as policy sync would
 * load it at that point (upsertTopic with the TopicAdded position, setGrant with the expiries on chain).
 */
function history(ops: Op[]): { logs: PolicyLog[]; storeAt: (ms: number) => PolicyStore } {
  const logs: PolicyLog[] = []
  const owner = new Map<string, string>()
  ops.forEach((o, i) => {
    const name = NAMES[o.name]!
    const id = topicId(name)
    const time = T0 + i * 10
    const base = { block: i + 1, logIndex: 0, txHash: `0x${(i + 1).toString(16).padStart(64, '0')}`, time }
    const expiry = (e: number) => (e < 0 ? FOREVER : BigInt(time + e))
    if (o.op === 'add') {
      if (owner.has(id)) return
      owner.set(id, PEOPLE[o.owner]!)
      logs.push({ ...base, name: 'TopicAdded', args: { topic: id, owner: PEOPLE[o.owner], name, flags: o.open ? 2 : 0, countries: encodeCountries(o.countries ? ['DE'] : []), reason: `r${i}` } })
      return
    }
    if (!owner.has(id)) return
    if (o.op === 'remove') {
      owner.delete(id)
      logs.push({ ...base, name: 'TopicRemoved', args: { topic: id, actor: owner.get(id), reason: 'gone' } })
    } else if (o.op === 'transfer') logs.push({ ...base, name: 'TopicTransferred', args: { topic: id, from: owner.get(id), to: PEOPLE[o.to], reason: 'sold' } })
    else if (o.op === 'grant') logs.push({ ...base, name: 'Granted', args: { topic: id, client: PEOPLE[o.client], roles: o.roles, expiresAt: expiry(o.expiry), reason: `why ${i}` } })
    else if (o.op === 'revoke') logs.push({ ...base, name: 'Revoked', args: { topic: id, client: PEOPLE[o.client], roles: o.roles, reason: 'no' } })
    else if (o.op === 'join') logs.push({ ...base, name: 'Joined', args: { topic: id, client: PEOPLE[o.client], roles: o.roles, paid: 0n, pubExpiresAt: o.roles & 1 ? expiry(o.expiry) : 0n, subExpiresAt: o.roles & 2 ? expiry(o.expiry) : 0n } })
    else logs.push({ ...base, name: 'TopicCountriesChanged', args: { topic: id, actor: owner.get(id), countries: encodeCountries(o.on ? ['DE'] : []), reason: '' } })
    if (o.op === 'transfer') owner.set(id, PEOPLE[o.to]!)
  })

  const storeAt = (ms: number) => {
    const store = new PolicyStore()
    const gen = new Map<string, number>()
    const info = new Map<string, { name: string; owner: string; countries: string[]; open: boolean; generation: number; registeredAt: number }>()
    for (const l of logs) {
      if (l.time * 1000 > ms) break
      const a = l.args
      const id = String(a.topic)
      const t = info.get(id)
      const put = (x: NonNullable<typeof t>) => {
        info.set(id, x)
        store.upsertTopic({ id, name: x.name, owner: x.owner, sensitive: false, open: x.open, countries: x.countries, generation: x.generation, registeredAt: x.registeredAt })
      }
      const current = (client: string) => store.grant(t!.name, client) ?? { pubExpiry: 0n, subExpiry: 0n }
      switch (l.name) {
        case 'TopicAdded': {
          const g = (gen.get(id) ?? -1) + 1
          gen.set(id, g)
          put({ name: String(a.name), owner: String(a.owner), countries: a.countries === encodeCountries(['DE']) ? ['DE'] : [], open: (Number(a.flags) & 2) !== 0, generation: g, registeredAt: l.block * 1_000_000 + l.logIndex })
          break
        }
        case 'TopicRemoved':
          info.delete(id)
          store.removeTopic(id)
          break
        case 'TopicTransferred':
          put({ ...t!, owner: String(a.to) })
          break
        case 'TopicCountriesChanged':
          put({ ...t!, countries: a.countries === encodeCountries(['DE']) ? ['DE'] : [] })
          break
        case 'Granted': {
          const c = current(String(a.client))
          const r = Number(a.roles)
          store.setGrant(id, String(a.client), r & 1 ? (a.expiresAt as bigint) : c.pubExpiry, r & 2 ? (a.expiresAt as bigint) : c.subExpiry)
          break
        }
        case 'Revoked': {
          const c = current(String(a.client))
          const r = Number(a.roles)
          store.setGrant(id, String(a.client), r & 1 ? 0n : c.pubExpiry, r & 2 ? 0n : c.subExpiry)
          break
        }
        case 'Joined': {
          const c = current(String(a.client))
          const r = Number(a.roles)
          store.setGrant(id, String(a.client), r & 1 ? (a.pubExpiresAt as bigint) : c.pubExpiry, r & 2 ? (a.subExpiresAt as bigint) : c.subExpiry)
          break
        }
      }
    }
    store.markSynced(1)
    return store
  }
  return { logs, storeAt }
}

describe('grantInForce agrees with the policy store', () => {
  test('random histories: the store allows iff a cause is named, and the cause indeed allows', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.tuple(fc.nat(4000), fc.nat(999), fc.nat(2), fc.nat(TOPICS.length - 1), fc.nat(FILTERS.length - 1), fc.constantFrom('DE', 'FR', null)), { minLength: 1, maxLength: 8 }),
        (ops, queries) => {
          const { logs, storeAt } = history(ops)
          const h = new GrantHistory([...logs].reverse()) // order of input does not matter
          for (const [sec, ms, who, ti, fi, country] of queries) {
            const at = (T0 + (sec % (ops.length * 10 + 500))) * 1000 + ms
            const store = storeAt(at)
            const now = Math.floor(at / 1000)
            const addr = PEOPLE[who]!
            const checks = [
              { role: 'publish' as const, target: TOPICS[ti]!, decision: store.canPublish(addr, TOPICS[ti]!, country, now), covers: topicMatches },
              { role: 'subscribe' as const, target: TOPICS[ti]!, decision: store.canReceive(addr, TOPICS[ti]!, country, now), covers: topicMatches },
              { role: 'subscribe' as const, target: FILTERS[fi]!, decision: store.canSubscribe(addr, FILTERS[fi]!, country, now), covers: filterCovers },
            ]
            for (const c of checks) {
              const cause = h.grantInForce(c.target, addr, c.role, at, country)
              const what = `${c.role} ${c.target} by ${addr} from ${country} at ${at}: store ${c.decision.allowed}/${c.decision.reason}, cause ${JSON.stringify(cause)}`
              assert.equal(cause !== null, c.decision.allowed, what)
              if (!cause) continue
              // The named cause really allows: its entry is in force in the store, covers the target, and holds the right.
              const entry = store.entry(cause.rule)
              assert.ok(entry && entry.effective, what)
              assert.ok(c.covers(cause.rule, c.target), what)
              assert.ok(logs.some((l) => l.txHash === cause.tx && l.name === cause.event && l.time * 1000 <= at), what)
              if (cause.kind === 'owner') {
                assert.equal(entry.owner, addr, what)
                assert.ok(cause.event === 'TopicAdded' || cause.event === 'TopicTransferred', what)
              } else {
                const g = entry.grants.get(addr)!
                const expiry = c.role === 'publish' ? g.pubExpiry : g.subExpiry
                assert.ok(expiry > BigInt(now), what)
                assert.equal(cause.until, expiry === FOREVER ? null : new Date(Number(expiry) * 1000).toISOString(), what)
                assert.equal(cause.event, cause.kind === 'grant' ? 'Granted' : 'Joined', what)
                const log = logs.find((l) => l.txHash === cause.tx)!
                assert.equal(String(log.args.client), addr, what)
                if (cause.kind === 'grant') assert.equal(cause.reason, log.args.reason, what)
              }
            }
          }
        },
      ),
      { numRuns: 400 },
    )
  })

  test('a registration never gives rights on another owner’s topic (namespace squatting)', () => {
    const id = topicId('vault/data')
    const logs: PolicyLog[] = [
      { name: 'TopicAdded', args: { topic: id, owner: A, name: 'vault/data', flags: 0, countries: '0x', reason: 'mine' }, block: 1, logIndex: 0, txHash: '0x01', time: T0 },
      { name: 'TopicAdded', args: { topic: topicId('#'), owner: B, name: '#', flags: 0, countries: '0x', reason: 'squat' }, block: 2, logIndex: 0, txHash: '0x02', time: T0 + 10 },
      { name: 'Granted', args: { topic: topicId('#'), client: C, roles: 3, expiresAt: FOREVER, reason: 'friend' }, block: 3, logIndex: 0, txHash: '0x03', time: T0 + 20 },
    ]
    const h = new GrantHistory(logs)
    const at = (T0 + 30) * 1000
    assert.equal(h.grantInForce('vault/data', B, 'publish', at), null)
    assert.equal(h.grantInForce('vault/data', C, 'subscribe', at), null)
    assert.equal(h.grantInForce('vault/data', A, 'publish', at)?.kind, 'owner')
  })

  test('cites the grant with its tx, granter, time, expiry and reason; nothing before the block’s time', () => {
    const id = topicId('plant/valve')
    const logs: PolicyLog[] = [
      { name: 'TopicAdded', args: { topic: id, owner: A, name: 'plant/valve', flags: 0, countries: '0x', reason: '' }, block: 5, logIndex: 1, txHash: '0xaa', time: T0 },
      { name: 'Granted', args: { topic: id, client: B, roles: 1, expiresAt: BigInt(T0 + 100), reason: 'commit:0x1234' }, block: 6, logIndex: 0, txHash: '0xbb', time: T0 + 10 },
      { name: 'Revoked', args: { topic: id, client: B, roles: 1, reason: 'ended' }, block: 7, logIndex: 0, txHash: '0xcc', time: T0 + 50 },
    ]
    const h = new GrantHistory(logs)
    assert.equal(h.grantInForce('plant/valve', B, 'publish', (T0 + 10) * 1000 - 1), null)
    assert.deepEqual(h.grantInForce('plant/valve', B, 'publish', (T0 + 10) * 1000), {
      kind: 'grant', rule: 'plant/valve', by: A, until: new Date((T0 + 100) * 1000).toISOString(), reason: 'commit:0x1234',
      event: 'Granted', tx: '0xbb', block: 6, logIndex: 0, at: new Date((T0 + 10) * 1000).toISOString(),
    })
    assert.equal(h.grantInForce('plant/valve', B, 'subscribe', (T0 + 20) * 1000), null)
    assert.equal(h.grantsInForceAt((T0 + 20) * 1000).length, 1)
    assert.equal(h.grantInForce('plant/valve', B, 'publish', (T0 + 50) * 1000), null) // revoked
    assert.equal(h.grantInForce('plant/valve', B, 'publish', (T0 + 20) * 1000)?.tx, '0xbb') // replays from the start for an earlier time
  })
})
