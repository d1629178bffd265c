/**
 * The minimal grant rule every checker must apply (docs/evidence.md §6.1 step 4d, (a)/(b)), on the real
 * vectors: every grant of an untampered bundle is explained by its cited event, and the same event stops
 * explaining it when the client, role, time, expiry, a later Revoked, or (for an owner) a later transfer
 * says otherwise. grant-rules.ts alone, without the policy replay that audit check adds on top.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { grantedEntries, grantExplains } from '../../../src/lib/audit/evidence/grant-rules.js'
import { readBundle, type CitedEvent, type DisclosedEntry, type EvidenceBundle } from '../../../src/lib/audit/evidence/format.js'

const load = (f: string): EvidenceBundle => readBundle(JSON.parse(readFileSync(fileURLToPath(new URL(`../../vectors/evidence/${f}`, import.meta.url)), 'utf8')))
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

describe('evidence grant rules (a)/(b)', () => {
  const b = load('whole.json')
  const entries = grantedEntries(b.periods.flatMap((p) => p.entries.filter((e): e is DisclosedEntry => !('redacted' in e))))
  const pick = () => {
    const g = b.grants.find((x) => x.policy !== null && b.policy[x.policy]!.event === 'Granted')!
    return { e: entries.find((x) => x.seq === g.seq)!, p: b.policy[g.policy!]! }
  }

  test('every grant of the untampered vector is explained by its cited event', () => {
    assert.ok(b.grants.length > 0)
    for (const g of b.grants) {
      const e = entries.find((x) => x.seq === g.seq)
      assert.ok(e, `grant of ${g.seq} names a disclosed access`)
      assert.equal(grantExplains(b.policy[g.policy!]!, e, b.policy), null, `seq ${g.seq}`)
    }
  })

  test('another client, a missing role, a later grant, an expired one, a later Revoked: not explained', () => {
    const { e, p } = pick()
    const other = clone(p)
    other.args.client = '0x' + '11'.repeat(20)
    assert.match(grantExplains(other, e, b.policy) ?? '', /for client/)
    const role = clone(p)
    role.args.roles = e.entry.kind === 'publish' || e.entry.kind === 'will' ? '2' : '1'
    assert.match(grantExplains(role, e, b.policy) ?? '', /do not include/)
    const later = clone(p)
    later.ref.time = Math.ceil(e.entry.t / 1000) + 1
    assert.match(grantExplains(later, e, b.policy) ?? '', /later than the entry/)
    const expired = clone(p)
    expired.args.expiresAt = String(Math.floor(e.entry.t / 1000))
    assert.match(grantExplains(expired, e, b.policy) ?? '', /expired/)
    const revoke: CitedEvent = { event: 'Revoked', args: { topic: p.args.topic!, client: p.args.client!, roles: '3', reason: 'r' }, ref: { ...p.ref, logIndex: p.ref.logIndex + 1 } }
    assert.match(grantExplains(p, e, [...b.policy, revoke]) ?? '', /revoked before the entry/)
    const revokedLater: CitedEvent = { ...revoke, ref: { ...revoke.ref, time: Math.floor(e.entry.t / 1000) + 1 } }
    assert.equal(grantExplains(p, e, [...b.policy, revokedLater]), null, 'a revoke after the entry does not matter')
  })

  test('ownership: the owner\'s TopicAdded explains it until a transfer away', () => {
    const { e, p } = pick()
    const added = b.policy.find((x) => x.event === 'TopicAdded' && x.args.topic === p.args.topic)!
    const mine = clone(added)
    mine.args.owner = e.entry.address!.toLowerCase()
    assert.equal(grantExplains(mine, e, b.policy), null)
    assert.match(grantExplains(added, e, b.policy) ?? '', /owner, not the entry/)
    const away: CitedEvent = { event: 'TopicTransferred', args: { topic: added.args.topic!, from: e.entry.address!.toLowerCase(), to: '0x' + '22'.repeat(20), reason: '' }, ref: { ...added.ref, logIndex: added.ref.logIndex + 1 } }
    assert.match(grantExplains(mine, e, [...b.policy, away]) ?? '', /ended that ownership/)
    const unrelated = clone(p)
    unrelated.args.topic = '0x' + '33'.repeat(32)
    assert.match(grantExplains(unrelated, e, b.policy) ?? '', /no cited TopicAdded/)
  })
})
