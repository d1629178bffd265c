/**
 * The typed seam between the proxy and its listeners (policy/types.ts ProxyEvents): the compiler refuses a
 * listener for the wrong payload or an unknown event (the @ts-expect-error lines fail `npm run typecheck`
 * once they stop being errors), and at run time each listener gets its own event's payload: the proxy's ban
 * orchestration (BanGuard) and the audit recorder, wired through one EventEmitter<ProxyEvents> as
 * `proxy start` wires them, turn failures, decisions and session ends into the right journal entries.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { BanGuard } from '../../../src/lib/proxy/bans.js'
import type { ProxyHandle } from '../../../src/lib/proxy/server.js'
import { attachRecorder, type RecorderSink } from '../../../src/lib/audit/recorder.js'
import type { EntryInput } from '../../../src/lib/audit/entry.js'
import type { BanEvent, DecisionEvent, ProxyEvents, ProxyEventSource, SessionEvent } from '../../../src/lib/policy/types.js'

const IP = '198.51.100.7'
const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'

/** Compile-time only: never called. */
function _typedSeam(proxy: ProxyHandle): void {
  const asSource: ProxyEventSource = proxy
  void asSource
  proxy.on('decision', (e: DecisionEvent) => void e.kind)
  proxy.on('ban', (e) => void (e.source satisfies 'local' | 'chain'))
  proxy.on('session-close', (e) => void (e.reason satisfies string | undefined))
  proxy.on('policy-synced', (e) => void (e.block satisfies number))
  // @ts-expect-error a ban listener does not get a DecisionEvent
  proxy.on('ban', (e: DecisionEvent) => void e)
  // @ts-expect-error a session listener does not get a BanEvent
  proxy.on('session-open', (e: BanEvent) => void e)
  // @ts-expect-error no such event
  proxy.on('decisions', () => {})
  const events = new EventEmitter<ProxyEvents>()
  // @ts-expect-error a decision is emitted with a DecisionEvent
  events.emit('decision', { subject: IP, until: 0, source: 'local' })
}
void _typedSeam

function recordingSink(): RecorderSink & { entries: EntryInput[] } {
  const entries: EntryInput[] = []
  return {
    entries,
    append: async (input) => void entries.push(input),
    flush: async () => {},
  }
}

describe('the proxy events seam', () => {
  test('each listener gets its own event: bans from BanGuard, decisions and session ends reach the recorder as their entries', async () => {
    const events = new EventEmitter<ProxyEvents>()
    const told: Partial<Record<keyof ProxyEvents, unknown[]>> = {}
    for (const name of ['decision', 'ban', 'session-open', 'session-close', 'policy-synced'] as const) {
      events.on(name, (e: unknown) => (told[name] ??= []).push(e))
    }
    const sink = recordingSink()
    const recorder = attachRecorder(events, sink, { coalesce: false })
    const bans = new BanGuard({
      bans: { threshold: 2, windowMs: 60_000, durationMs: 60_000, reportIntervalMs: 3_600_000, reportBatchMax: 100 },
      sessions: [],
      onBan: (e) => events.emit('ban', e),
    })

    const decision: DecisionEvent = { kind: 'publish', allowed: false, reason: 'no-grant', ip: IP, address: ALICE, clientId: 'c1', topic: 'plant/valve', sensitive: false }
    const open: SessionEvent = { ip: IP, address: ALICE, clientId: 'c1' }
    events.emit('session-open', open)
    events.emit('decision', decision)
    bans.recordFailure(IP, ALICE)
    bans.recordFailure(IP, ALICE)
    events.emit('session-close', { ...open, reason: 'banned' })
    events.emit('policy-synced', { block: 7 })
    await recorder.stop()
    await bans.close()

    assert.deepEqual(told.decision, [decision])
    assert.equal(told.ban?.length, 1)
    const ban = told.ban![0] as BanEvent
    assert.equal(ban.source, 'local')
    assert.equal(ban.address, ALICE)
    assert.deepEqual(told['session-open'], [open])
    assert.deepEqual(told['session-close'], [{ ...open, reason: 'banned' }])
    assert.deepEqual(told['policy-synced'], [{ block: 7 }])
    assert.deepEqual(
      sink.entries.map((e) => [e.kind, e.outcome, e.reason]),
      [
        ['publish', 'deny', 'no-grant'],
        ['ban', 'deny', 'ban-local'],
        ['disconnect', 'deny', 'banned'],
      ],
    )
    assert.equal(sink.entries[1]!.address, ALICE)
    assert.equal(sink.entries[1]!.until, ban.until)
  })
})
