/**
 * The recorder maps the proxy's events to journal entries without ever blocking the packet path, hands
 * the proxy the promise to hold an acknowledgement on (strict: always; relaxed: only when the journal is
 * behind), and counts what it could not record.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { getAddress } from 'ethers'
import type { EntryInput } from '../../../src/lib/audit/entry.js'
import { openJournal } from '../../../src/lib/audit/journal.js'
import { readRecords } from '../../../src/lib/audit/journal-files.js'
import { attachRecorder, createRecorder, entryForBan, type RecorderSink, type RecorderSource } from '../../../src/lib/audit/recorder.js'
import type { ProxyHandle } from '../../../src/lib/proxy/server.js'
import type { DecisionEvent } from '../../../src/lib/policy/types.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-recorder-')

const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const base = { ip: '198.51.100.7', address: ALICE, clientId: 'sensor-1' }

// The real ProxyHandle is a RecorderSource (checked by the compiler).
const _proxyIsASource = (p: ProxyHandle): RecorderSource => p
void _proxyIsASource

describe('recorder', () => {
  test('maps every kind of decision, disconnects and bans to entries; non-sensitive allowed deliveries are skipped', async () => {
    const dataDir = tempData()
    const journal = await openJournal({ dataDir, flushIntervalMs: 5 })
    const proxy = new EventEmitter()
    const rec = attachRecorder(proxy, journal, { countryOf: (ip) => (ip === '198.51.100.7' ? 'GB' : null), coalesce: false })

    const decisions: DecisionEvent[] = [
      { ...base, kind: 'connect', allowed: true, reason: 'password' },
      { ip: '203.0.113.9', kind: 'connect', allowed: false, reason: 'bad-signature', address: '0x0000000000000000000000000000000000000bad', verified: false, detail: 'never stored' },
      { ...base, kind: 'will', allowed: true, reason: 'member', topic: 'plant/status', sensitive: false },
      { ...base, kind: 'subscribe', allowed: true, reason: 'member', topic: 'plant/#', sensitive: true },
      { ...base, kind: 'publish', allowed: false, reason: 'not-member', topic: 'plant/valve', sensitive: false },
      { ...base, kind: 'deliver', allowed: true, reason: 'member', topic: 'plant/secret', sensitive: true },
      { ...base, kind: 'deliver', allowed: true, reason: 'member', topic: 'plant/weather', sensitive: false },
      { ...base, kind: 'deliver', allowed: false, reason: 'expired', topic: 'plant/weather', sensitive: false },
    ]
    for (const d of decisions) proxy.emit('decision', d)
    proxy.emit('session-close', { ...base, reason: 'client-disconnected' })
    proxy.emit('session-close', { ...base, reason: 'banned' })
    proxy.emit('ban', { subject: '203.0.113.9', until: 1_900_000_000_000, source: 'local', ip: '203.0.113.9' })
    proxy.emit('ban', { subject: '0x000000000000000000000000' + ALICE.slice(2).toLowerCase(), until: 1_900_000_000_000, source: 'chain' })
    proxy.emit('ban', { subject: '0x' + 'ee'.repeat(32), until: 1_900_000_000_000, source: 'chain' })

    const stats = await rec.stop()
    assert.deepEqual(stats, { queued: 12, written: 12, dropped: 0, failed: 0, skipped: 1, coalesced: 0 })
    proxy.emit('decision', decisions[0]) // after stop: not recorded
    await journal.close()

    const got: Record<string, unknown>[] = []
    for await (const { record } of readRecords(dataDir)) {
      assert.equal(record.redacted, false)
      if (!record.redacted) {
        const { seq: _s, t: _t, ...rest } = record.entry
        got.push(rest)
      }
    }
    assert.deepEqual(got, [
      { kind: 'connect', outcome: 'allow', reason: 'password', ...base, country: 'GB' },
      { kind: 'connect', outcome: 'deny', reason: 'bad-signature', ip: '203.0.113.9', address: '0x0000000000000000000000000000000000000bad', unverified: true },
      { kind: 'will', outcome: 'allow', reason: 'member', ...base, topic: 'plant/status' },
      { kind: 'subscribe', outcome: 'allow', reason: 'member', ...base, topic: 'plant/#', sensitive: true },
      { kind: 'publish', outcome: 'deny', reason: 'not-member', ...base, topic: 'plant/valve' },
      { kind: 'deliver', outcome: 'allow', reason: 'member', ...base, topic: 'plant/secret', sensitive: true },
      { kind: 'deliver', outcome: 'deny', reason: 'expired', ...base, topic: 'plant/weather' },
      { kind: 'disconnect', outcome: 'allow', reason: 'client-disconnected', ...base },
      { kind: 'disconnect', outcome: 'deny', reason: 'banned', ...base },
      { kind: 'ban', outcome: 'deny', reason: 'ban-local', ip: '203.0.113.9', until: 1_900_000_000_000 },
      { kind: 'ban', outcome: 'deny', reason: 'ban-chain', address: ALICE, until: 1_900_000_000_000 },
      { kind: 'ban', outcome: 'deny', reason: 'ban-chain', subject: '0x' + 'ee'.repeat(32), until: 1_900_000_000_000 },
    ])
  })

  test('never waits for the disk: events are queued synchronously even when writes hang', async () => {
    let calls = 0
    const hanging: RecorderSink = {
      append: () => {
        calls++
        return new Promise(() => {})
      },
      flush: async () => {},
    }
    const proxy = new EventEmitter()
    const rec = attachRecorder(proxy, hanging, { coalesce: false })
    for (let i = 0; i < 1_000; i++) proxy.emit('decision', { ...base, kind: 'publish', allowed: true, reason: 'member', topic: 't', sensitive: false })
    assert.equal(calls, 1_000, 'every event reached the journal before emit returned')
    assert.deepEqual(rec.stats(), { queued: 1_000, written: 0, dropped: 0, failed: 0, skipped: 0, coalesced: 0 })
  })

  test('identical publishes of one write batch become one entry with a count, dated by the first; later ones and distinct ones stay apart', async () => {
    const dataDir = tempData()
    const journal = await openJournal({ dataDir })
    const proxy = new EventEmitter()
    const rec = attachRecorder(proxy, journal)
    const before = Date.now()
    for (let i = 0; i < 500; i++) proxy.emit('decision', { ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'a', sensitive: false })
    for (let i = 0; i < 3; i++) proxy.emit('decision', { ...base, kind: 'publish', allowed: false, reason: 'no-grant', topic: 'b', sensitive: false })
    proxy.emit('decision', { ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'c', sensitive: false })
    proxy.emit('decision', { ...base, kind: 'subscribe', allowed: true, reason: 'granted', topic: 'a', sensitive: false })
    proxy.emit('decision', { ...base, kind: 'subscribe', allowed: true, reason: 'granted', topic: 'a', sensitive: false })
    await journal.flush()
    proxy.emit('decision', { ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'a', sensitive: false }) // the next batch
    await rec.stop()
    await journal.close()
    const es: EntryInput[] = []
    for await (const { record } of readRecords(dataDir)) if (!record.redacted) es.push(record.entry)
    assert.deepEqual(
      es.map((e) => [e.kind, e.topic, e.outcome, e.count]),
      [
        ['publish', 'a', 'allow', 500],
        ['publish', 'b', 'deny', 3],
        ['publish', 'c', 'allow', undefined],
        ['subscribe', 'a', 'allow', undefined],
        ['subscribe', 'a', 'allow', undefined],
        ['publish', 'a', 'allow', undefined],
      ],
      'merged within the batch only; subscribes never',
    )
    const first = es[0] as EntryInput & { t: number }
    assert.ok(first.t >= before && first.t <= Date.now() && first.since === undefined, 'dated by its first decision')
  })

  test('strict: the promise for every journaled decision resolves once it is on disk; relaxed: only while the journal is behind', async () => {
    let lag = 0
    const resolvers: (() => void)[] = []
    const sink: RecorderSink = {
      append: () => new Promise((r) => resolvers.push(() => r({}))),
      flush: async () => {},
      lagMs: () => lag,
    }
    const strict = createRecorder(sink)
    const p = strict.decision({ ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'a' })
    assert.ok(p, 'strict holds the acknowledgement')
    assert.equal(strict.decision({ ...base, kind: 'deliver', allowed: true, reason: 'granted', topic: 'weather', sensitive: false }), null, 'nothing journaled, nothing to wait for')
    let done = false
    void p.then(() => (done = true))
    await new Promise((r) => setImmediate(r))
    assert.equal(done, false, 'not before the journal resolved')
    resolvers.shift()!()
    await p
    assert.equal(done, true)

    const relaxed = createRecorder(sink, { sync: 'relaxed' })
    assert.equal(relaxed.decision({ ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'a' }), null, 'relaxed: the journal keeps up, nothing waits')
    lag = 51
    assert.ok(relaxed.decision({ ...base, kind: 'publish', allowed: true, reason: 'granted', topic: 'a' }), 'relaxed: over 50 ms behind, the acknowledgement waits')
    assert.equal(relaxed.stats().queued, 2, 'journaled either way')
  })

  test('counts dropped (backlog full) and failed writes, and logs a burst once', async () => {
    let n = 0
    const sink: RecorderSink = {
      append: (_e: EntryInput) => {
        n++
        const err = Object.assign(new Error(n % 2 ? 'journal backlog full' : 'ENOSPC'), { code: n % 2 ? 'JOURNAL_BACKLOG' : 'ENOSPC' })
        return Promise.reject(err)
      },
      flush: async () => {},
    }
    const errors: string[] = []
    const logger = { debug() {}, info() {}, warn() {}, error: (m: string) => void errors.push(m), enabled: () => true }
    const proxy = new EventEmitter()
    const rec = attachRecorder(proxy, sink, { logger })
    for (let i = 0; i < 10; i++) proxy.emit('decision', { ...base, kind: 'subscribe', allowed: false, reason: 'not-member', topic: 'x' })
    const stats = await rec.stop()
    assert.deepEqual(stats, { queued: 10, written: 0, dropped: 5, failed: 5, skipped: 0, coalesced: 0 })
    assert.equal(errors.length, 1)
  })

  test("deliveries 'all': allowed deliveries on any topic, one entry per receiver/topic/second with a count; never held; never across a period", async () => {
    const dataDir = tempData()
    const journal = await openJournal({ dataDir, periodMs: 60_000 })
    let now = 1_800_000_010_250 // second …010 of a 60 s period: not its last second
    const rec = createRecorder(journal, { deliveries: 'all', now: () => now })
    const d = (topic: string, address = ALICE): DecisionEvent => ({ ...base, address, kind: 'deliver', allowed: true, reason: 'granted', topic })
    for (let i = 0; i < 5; i++) assert.equal(rec.decision(d('plant/weather')), null) // nothing waits on them
    rec.decision(d('plant/other'))
    now += 1000 // the next second: a new entry
    rec.decision(d('plant/weather'))
    rec.decision(d('plant/weather'))
    now = 1_800_000_019_500 // the period's last second (…019 ends [1_800_000_000, 1_800_000_020)): written at once
    rec.decision(d('plant/weather', '0x00000000000000000000000000000000000000aa'))
    const stats = await rec.stop()
    await journal.close()
    assert.equal(stats.coalesced, 5)
    const got: string[] = []
    for await (const { record } of readRecords(dataDir)) if (!record.redacted) got.push(`${record.entry.address} ${record.entry.topic} ${record.entry.count ?? 1} ${record.entry.since ?? '-'}`)
    assert.deepEqual(got.sort(), [
      `0x00000000000000000000000000000000000000aa plant/weather 1 -`,
      `${ALICE} plant/other 1 -`,
      `${ALICE} plant/weather 2 1800000011250`,
      `${ALICE} plant/weather 5 1800000010250`,
    ])
    // The default keeps today's behaviour: not journaled.
    const dir2 = tempData()
    const j2 = await openJournal({ dataDir: dir2 })
    const r2 = createRecorder(j2)
    r2.decision(d('plant/weather'))
    assert.equal((await r2.stop()).skipped, 1)
    await j2.close()
  })

  test('a chain ban on a padded address is journaled as that (checksummed) address; a keyed IP hash as the subject', () => {
    const addr = '0x' + 'ab'.repeat(20)
    assert.equal(entryForBan({ subject: '0x' + '0'.repeat(24) + addr.slice(2), until: 1, source: 'chain' }).address, getAddress(addr))
    const hashed = entryForBan({ subject: '0x' + '12'.repeat(32), until: 1, source: 'chain' })
    assert.deepEqual([hashed.address, hashed.ip, hashed.subject], [undefined, undefined, '0x' + '12'.repeat(32)])
  })
})
