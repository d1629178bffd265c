/**
 * BanGuard: the one place the proxy's bans are orchestrated (failures counted, bans decided, told, shared on
 * chain through the reporter, banned sessions kicked), without sockets or a chain: sessions are stand-ins
 * that record their kicks, the reporter's sink records the intents it is handed.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { BanGuard, subjectForAddress, subjectForIp, type Bannable } from '../../../src/lib/proxy/bans.js'
import type { EnqueueResult, IntentInput } from '../../../src/lib/chain/outbox.js'
import { ReasonCode } from '../../../src/lib/mqtt/reason-codes.js'
import type { BanEvent } from '../../../src/lib/policy/types.js'

const IP = '198.51.100.7'
const NEIGHBOUR = '198.51.100.8'
const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const KEY = 'shared-ban-key'
const BANS = { threshold: 3, windowMs: 60_000, durationMs: 300_000, reportIntervalMs: 3_600_000, reportBatchMax: 100 }

class RecordingOutbox {
  intents: IntentInput[] = []
  async enqueue(intent: IntentInput): Promise<EnqueueResult> {
    this.intents.push(intent)
    return { id: String(this.intents.length), deduped: false, durable: true }
  }
}

/** A session that records its kicks and, like a real one (its close → the server's onClose), leaves the live set. */
class FakeSession implements Bannable {
  kicks: [number, string][] = []
  live?: Set<FakeSession>
  constructor(
    readonly ip: string,
    readonly address?: string,
  ) {}
  kick(reasonCode: number, why: string): void {
    this.kicks.push([reasonCode, why])
    this.live?.delete(this)
  }
}

function guard(o: { subjectKey?: string; sessions?: FakeSession[]; reporter?: RecordingOutbox } = {}) {
  const told: BanEvent[] = []
  const sessions = new Set(o.sessions)
  for (const s of sessions) s.live = sessions
  const g = new BanGuard({ bans: { ...BANS, subjectKey: o.subjectKey }, reporter: o.reporter, sessions, onBan: (e) => told.push(e) })
  return { g, told }
}

const tick = () => new Promise((r) => setImmediate(r))

describe('BanGuard', () => {
  test('failed authentications ban the IP once, tell it once, share its keyed hash, and kick its sessions after the failing packet', async () => {
    const mine = new FakeSession(IP, ALICE)
    const other = new FakeSession(NEIGHBOUR)
    const outbox = new RecordingOutbox()
    const { g, told } = guard({ subjectKey: KEY, sessions: [mine, other], reporter: outbox })
    for (let i = 0; i < BANS.threshold - 1; i++) g.recordFailure(IP)
    assert.equal(g.isBanned(IP), false)
    const before = Date.now()
    g.recordFailure(IP)
    g.recordFailure(IP) // a failure of a banned subject is not a new ban
    assert.equal(told.length, 1)
    const ban = told[0]!
    assert.deepEqual({ ...ban, until: 0 }, { subject: IP, until: 0, source: 'local', ip: IP, address: undefined })
    assert.ok(ban.until >= before + BANS.durationMs && ban.until <= Date.now() + BANS.durationMs)
    assert.equal(g.isBanned(IP), true)
    assert.equal(g.isBanned(NEIGHBOUR), false)
    assert.equal(g.activeCount(), 2, 'the clear IP and its keyed hash')
    assert.deepEqual(mine.kicks, [], 'not from inside the failing packet')
    await tick()
    assert.deepEqual(mine.kicks, [[ReasonCode.Banned, 'banned']])
    assert.deepEqual(other.kicks, [])
    await g.close()
    assert.deepEqual(outbox.intents, [{ kind: 'bans', method: 'recordBans', args: [[subjectForIp(IP, KEY)], [Math.ceil(ban.until / 1000)], 'repeated failures from one address'] }])
  })

  test('without a key an IP ban stays local: nothing goes on chain', async () => {
    const outbox = new RecordingOutbox()
    const { g, told } = guard({ reporter: outbox })
    for (let i = 0; i < BANS.threshold; i++) g.recordFailure(IP)
    assert.equal(told.length, 1)
    assert.equal(g.activeCount(), 1)
    await g.close()
    assert.deepEqual(outbox.intents, [])
  })

  test('refusals on an authenticated session count against the identity only, not the IP behind it', async () => {
    const alice = new FakeSession(IP, ALICE)
    const neighbour = new FakeSession(IP)
    const outbox = new RecordingOutbox()
    const { g, told } = guard({ subjectKey: KEY, sessions: [alice, neighbour], reporter: outbox })
    for (let i = 0; i < BANS.threshold; i++) g.recordFailure(IP, ALICE)
    assert.equal(told.length, 1)
    assert.deepEqual({ ...told[0]!, until: 0 }, { subject: subjectForAddress(ALICE), until: 0, source: 'local', ip: undefined, address: ALICE })
    assert.equal(g.isBanned(IP), false)
    assert.equal(g.isBanned(IP, ALICE), true)
    await tick()
    assert.deepEqual(alice.kicks, [[ReasonCode.Banned, 'banned']])
    assert.deepEqual(neighbour.kicks, [])
    await g.close()
    assert.deepEqual(outbox.intents.map((i) => i.args[2]), ['repeated refusals for one identity'])
    assert.deepEqual(outbox.intents.map((i) => i.args[0]), [[subjectForAddress(ALICE)]])
  })

  test("a ban read from the contract: told with source 'chain' in ms, kicks at once, never re-reported; an expired one is ignored", async () => {
    const alice = new FakeSession(IP, ALICE)
    const outbox = new RecordingOutbox()
    const { g, told } = guard({ sessions: [alice], reporter: outbox })
    g.fromChain(subjectForAddress(ALICE), Math.floor(Date.now() / 1000) - 10)
    assert.deepEqual(told, [])
    assert.equal(g.isBanned(IP, ALICE), false)
    const untilSec = Math.floor(Date.now() / 1000) + 600
    g.fromChain(subjectForAddress(ALICE), untilSec)
    assert.deepEqual(told, [{ subject: subjectForAddress(ALICE), until: untilSec * 1000, source: 'chain' }])
    assert.deepEqual(alice.kicks, [[ReasonCode.Banned, 'banned']])
    await g.close()
    assert.deepEqual(outbox.intents, [])
  })

  test('a ban from another worker applies here without being told again; with report it is shared on chain', async () => {
    const byIp = new FakeSession(IP)
    const alice = new FakeSession(NEIGHBOUR, ALICE)
    const outbox = new RecordingOutbox()
    const { g, told } = guard({ subjectKey: KEY, sessions: [byIp, alice], reporter: outbox })
    const until = Date.now() + 60_000
    g.apply({ ip: IP, until: Date.now() - 1 }, { report: true })
    assert.equal(g.isBanned(IP), false, 'an expired ban is ignored')
    g.apply({ ip: IP, until })
    g.apply({ address: ALICE, until }, { report: true })
    assert.deepEqual(told, [])
    assert.equal(g.isBanned(IP), true)
    assert.equal(g.isBanned(NEIGHBOUR, ALICE), true)
    assert.deepEqual(byIp.kicks, [[ReasonCode.Banned, 'banned']])
    assert.deepEqual(alice.kicks, [[ReasonCode.Banned, 'banned']])
    await g.close()
    assert.deepEqual(outbox.intents, [{ kind: 'bans', method: 'recordBans', args: [[subjectForAddress(ALICE)], [Math.ceil(until / 1000)], 'repeated refusals for one identity'] }])
  })
})
