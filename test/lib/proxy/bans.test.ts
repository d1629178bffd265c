import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BanList, BanReporter, subjectForAddress, subjectForIp, type BanReporterOptions } from '../../../src/lib/proxy/bans.js'
import type { TxResult } from '../../../src/lib/chain/client.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { openOutbox, type EnqueueResult, type IntentInput, type Outbox } from '../../../src/lib/chain/outbox.js'
import { recordingLogger } from '../../helpers/logger.js'

describe('BanList', () => {
  const opts = { threshold: 3, windowMs: 1_000, durationMs: 5_000 }

  test('the threshold-th failure within the window bans for durationMs', () => {
    const b = new BanList(opts)
    assert.deepEqual(b.fail('198.51.100.7', 0), { banned: false })
    assert.deepEqual(b.fail('198.51.100.7', 100), { banned: false })
    assert.equal(b.failureCount('198.51.100.7', 100), 2)
    assert.deepEqual(b.fail('198.51.100.7', 200), { banned: true, until: 5_200, newBan: true })
    assert.equal(b.isBanned('198.51.100.7', 5_199), true)
    assert.equal(b.isBanned('198.51.100.7', 5_200), false, 'bans expire')
    assert.deepEqual(b.activeBans(5_200), [])
    // After expiry the count starts from zero.
    assert.deepEqual(b.fail('198.51.100.7', 5_300), { banned: false })
  })

  test('the window slides: failures older than windowMs do not count', () => {
    const b = new BanList(opts)
    b.fail('s', 0)
    b.fail('s', 600)
    assert.deepEqual(b.fail('s', 1_000), { banned: false }, 'the failure at 0 left the window at 1000')
    assert.equal(b.failureCount('s', 1_000), 2)
    assert.deepEqual(b.fail('s', 1_500), { banned: true, until: 6_500, newBan: true })
  })

  test('subjects are counted separately (an IP and an address)', () => {
    const b = new BanList(opts)
    const addr = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'
    for (const t of [0, 1, 2]) b.fail(addr, t)
    assert.equal(b.isBanned(addr, 3), true)
    assert.equal(b.isBanned('203.0.113.5', 3), false)
    assert.deepEqual(b.fail('203.0.113.5', 3), { banned: false })
  })

  test('a failure while banned reports the ban, not a new one', () => {
    const b = new BanList(opts)
    for (const t of [0, 1, 2]) b.fail('s', t)
    assert.deepEqual(b.fail('s', 10), { banned: true, until: 5_002, newBan: false })
    assert.equal(b.activeBans(10).length, 1)
  })

  test('ban(): chain bans are recorded, extended but never shortened', () => {
    const b = new BanList(opts)
    assert.equal(b.ban('0xabc', 10_000, 'chain'), true)
    assert.equal(b.ban('0xabc', 9_000, 'local'), false)
    assert.deepEqual(b.activeBans(0), [{ subject: '0xabc', until: 10_000, source: 'chain' }])
    assert.equal(b.ban('0xabc', 20_000, 'local'), true)
    assert.deepEqual(b.activeBans(0), [{ subject: '0xabc', until: 20_000, source: 'local' }])
    assert.equal(b.banUntil('0xabc', 19_999), 20_000)
    assert.equal(b.unban('0xabc'), true)
    assert.equal(b.isBanned('0xabc', 0), false)
  })

  test('activeBans lists bans in force and drops expired ones', () => {
    const b = new BanList(opts)
    b.ban('a', 100, 'local')
    b.ban('b', 300, 'chain')
    b.ban('c', 200, 'local')
    assert.deepEqual(
      b.activeBans(150).map((x) => x.subject),
      ['b', 'c'],
    )
    assert.equal(b.banCount, 2)
  })

  test('memory is bounded: a flood of sources keeps at most maxTracked counters and maxBans bans', () => {
    const b = new BanList({ ...opts, maxTracked: 100, maxBans: 50 })
    for (let i = 0; i < 10_000; i++) b.fail(`10.0.${i >> 8}.${i & 255}`, i)
    assert.equal(b.trackedCount, 100)
    assert.ok(b.evicted >= 9_900)
    // The most recent sources are the ones kept.
    assert.equal(b.failureCount('10.0.39.15', 9_999), 1)
    assert.equal(b.failureCount('10.0.0.0', 9_999), 0)
    const banner = new BanList({ threshold: 1, windowMs: 1_000, durationMs: 1_000_000, maxBans: 50 })
    for (let i = 0; i < 1_000; i++) banner.fail(`s${i}`, i)
    assert.equal(banner.banCount, 50)
    assert.equal(banner.isBanned('s999', 1_000), true)
    assert.equal(banner.isBanned('s0', 1_000), false, 'oldest ban dropped')
  })

  test('sweep drops stale counters and expired bans', () => {
    const b = new BanList(opts)
    b.fail('old', 0)
    b.fail('new', 900)
    b.ban('x', 1_000, 'local')
    b.sweep(1_500)
    assert.equal(b.trackedCount, 1)
    assert.equal(b.banCount, 0)
  })

  test('options are validated', () => {
    assert.throws(() => new BanList({ ...opts, threshold: 0 }), RangeError)
    assert.throws(() => new BanList({ ...opts, windowMs: 0 }), RangeError)
  })
})

describe('subjects', () => {
  const KEY = 'shared-secret-of-this-deployment'

  test('subjectForIp is HMAC-SHA256 of the normalised IP, as bytes32', () => {
    const s = subjectForIp('203.0.113.5', KEY)
    assert.equal(s, `0x${createHmac('sha256', KEY).update('flytrap/ban/ip/v1:203.0.113.5').digest('hex')}`)
    assert.match(s!, /^0x[0-9a-f]{64}$/)
    assert.ok(!s!.includes('cb007105'), 'the clear IP does not appear')
  })
  test('spellings of one IP give one subject; other IPs and keys differ', () => {
    assert.equal(subjectForIp('::ffff:203.0.113.5', KEY), subjectForIp('203.0.113.5', KEY))
    assert.equal(subjectForIp('2001:DB8:0:0::1', KEY), subjectForIp('2001:db8::1', KEY))
    assert.notEqual(subjectForIp('203.0.113.6', KEY), subjectForIp('203.0.113.5', KEY))
    assert.notEqual(subjectForIp('203.0.113.5', 'other key'), subjectForIp('203.0.113.5', KEY))
  })
  test('without a key IP bans are not shared (null)', () => {
    assert.equal(subjectForIp('203.0.113.5', undefined), null)
    assert.equal(subjectForIp('203.0.113.5', ''), null)
  })
  test('not an IP is a RangeError', () => {
    assert.throws(() => subjectForIp('example.com', KEY), RangeError)
  })
  test('subjectForAddress left-pads the address', () => {
    assert.equal(subjectForAddress('0x70997970C51812dc3A010C7d01b50e0d17dc79C8'), '0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8')
    assert.equal(subjectForAddress('0x70997970c51812dc3a010c7d01b50e0d17dc79c8'), '0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8')
    assert.throws(() => subjectForAddress('0x1234'))
  })
})

/** A stand-in for FlyTrapClient.recordBans that records every call. */
class FakeChain {
  calls: { subjects: string[]; untils: number[]; reason: string }[] = []
  failNext = 0
  hold: Promise<void> | undefined

  async recordBans(subjects: string[], untils: number[], reason: string): Promise<TxResult> {
    this.calls.push({ subjects: [...subjects], untils: [...untils], reason })
    if (this.hold) await this.hold
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('connect ECONNREFUSED 127.0.0.1:8545')
    }
    return { hash: `0x${this.calls.length.toString(16).padStart(64, '0')}`, blockNumber: this.calls.length, gasUsed: 0n, events: [] }
  }
}

const subj = (i: number) => `0x${i.toString(16).padStart(64, '0')}`
const reporterOpts = (o: Partial<BanReporterOptions> = {}): BanReporterOptions => ({ intervalMs: 60_000, batchMax: 100, autoStart: false, ...o })

describe('BanReporter', () => {
  test('the common case: a few bans, duplicates merged, one transaction', async () => {
    const chain = new FakeChain()
    const r = new BanReporter(chain, reporterOpts({ reason: 'auth-failures' }))
    r.enqueue(subj(1), 1_700_000_000)
    r.enqueue(subj(2), 1_700_000_000.001) // rounds up to the next second
    r.enqueue(subj(1), 1_700_000_005) // extends: the later expiry wins
    r.enqueue(subj(1).toUpperCase().replace('0X', '0x'), 1_700_000_004) // same subject, earlier: ignored
    r.enqueue(subj(3), 1_700_000_000)
    assert.equal(r.pending, 3)
    await r.tick()
    assert.deepEqual(chain.calls, [{ subjects: [subj(1), subj(2), subj(3)], untils: [1_700_000_005, 1_700_000_001, 1_700_000_000], reason: 'auth-failures' }])
    assert.equal(r.pending, 0)
    await r.tick()
    assert.equal(chain.calls.length, 1, 'nothing queued, no transaction')
  })

  test('per-ban reasons: one transaction records the distinct reasons', async () => {
    const chain = new FakeChain()
    const r = new BanReporter({ reporter: chain, ...reporterOpts() })
    r.enqueue(subj(1), 2e9, 'repeated failures from one address')
    r.enqueue(subj(2), 2e9, 'repeated refusals for one identity')
    r.enqueue(subj(3), 2e9, 'repeated failures from one address')
    r.enqueue(subj(4), 2e9)
    await r.tick()
    assert.equal(chain.calls.length, 1)
    assert.equal(chain.calls[0]!.reason, 'repeated failures from one address; repeated refusals for one identity; threshold')
  })

  test('thousands of bans: one transaction per interval by default, each at most batchMax', async () => {
    const chain = new FakeChain()
    const r = new BanReporter(chain, reporterOpts({ maxQueue: 10_000 }))
    for (let i = 0; i < 5_000; i++) r.enqueue(subj(i), 2e9)
    await r.tick()
    assert.equal(chain.calls.length, 1)
    assert.equal(chain.calls[0]!.subjects.length, 100)
    assert.equal(r.pending, 4_900)
  })

  test('with maxTxPerInterval raised, one interval sends ceil(n / batchMax) transactions and no more', async () => {
    const chain = new FakeChain()
    const r = new BanReporter(chain, reporterOpts({ maxQueue: 10_000, maxTxPerInterval: Infinity }))
    for (let i = 0; i < 2_550; i++) r.enqueue(subj(i % 2_501), 2e9) // 2501 distinct
    await r.tick()
    assert.equal(chain.calls.length, Math.ceil(2_501 / 100))
    assert.ok(chain.calls.every((c) => c.subjects.length <= 100))
    assert.equal(new Set(chain.calls.flatMap((c) => c.subjects)).size, 2_501)
    assert.equal(chain.calls.flatMap((c) => c.subjects).length, 2_501, 'each subject once')
  })

  test('a reported ban is not reported again unless it was extended', async () => {
    const chain = new FakeChain()
    const r = new BanReporter(chain, reporterOpts())
    r.enqueue(subj(1), 10_000)
    await r.tick()
    r.enqueue(subj(1), 10_000)
    r.enqueue(subj(1), 9_000)
    assert.equal(r.pending, 0)
    r.enqueue(subj(1), 20_000)
    await r.tick()
    assert.deepEqual(
      chain.calls.map((c) => c.untils),
      [[10_000], [20_000]],
    )
  })

  test('the queue is bounded: the oldest are dropped and counted', async () => {
    const chain = new FakeChain()
    const dropped: number[] = []
    const r = new BanReporter(chain, reporterOpts({ maxQueue: 10, batchMax: 100, onDropped: (n) => dropped.push(n) }))
    for (let i = 0; i < 25; i++) r.enqueue(subj(i), 2e9)
    assert.equal(r.pending, 10)
    assert.equal(r.dropped, 15)
    assert.equal(
      dropped.reduce((a, b) => a + b, 0),
      15,
    )
    await r.tick()
    assert.deepEqual(
      chain.calls[0]!.subjects,
      Array.from({ length: 10 }, (_, i) => subj(15 + i)),
    )
  })

  test('a failed write is kept and retried on the next interval; nothing throws', async () => {
    const chain = new FakeChain()
    const log = recordingLogger()
    const reports: boolean[] = []
    const r = new BanReporter(chain, reporterOpts({ batchMax: 2, logger: log, onReport: (x) => reports.push(x.ok) }))
    for (let i = 1; i <= 3; i++) r.enqueue(subj(i), 2e9)
    chain.failNext = 1
    await r.tick()
    assert.equal(r.pending, 3)
    assert.equal(r.failures, 1)
    assert.ok(log.lines.some((l) => l.level === 'warn' && /retry/.test(l.msg)))
    r.enqueue(subj(4), 2e9)
    await r.tick()
    await r.tick()
    assert.deepEqual(
      chain.calls.map((c) => c.subjects),
      [[subj(1), subj(2)], [subj(1), subj(2)], [subj(3), subj(4)]],
      'the failed batch is retried first',
    )
    assert.deepEqual(reports, [false, true, true])
    assert.equal(r.transactions, 2)
  })

  test('a failing callback or a synchronously throwing client does not escape', async () => {
    const r = new BanReporter(
      {
        recordBans: () => {
          throw new Error('sync boom')
        },
      },
      reporterOpts({ onReport: () => { throw new Error('hook') }, onDropped: () => { throw new Error('hook') }, maxQueue: 1 }),
    )
    r.enqueue(subj(1), 2e9)
    r.enqueue(subj(2), 2e9)
    await r.tick()
    assert.deepEqual(await r.flush(), { sent: 0, failed: 1, pending: 1 })
  })

  test('no overlapping transactions: ticks while one is in flight send nothing', async () => {
    const chain = new FakeChain()
    let release!: () => void
    chain.hold = new Promise((res) => (release = res))
    const r = new BanReporter(chain, reporterOpts({ batchMax: 1, maxTxPerInterval: 1 }))
    r.enqueue(subj(1), 2e9)
    r.enqueue(subj(2), 2e9)
    const first = r.tick()
    void r.tick()
    const flushed = r.flush()
    r.enqueue(subj(1), 2e9) // in flight with the same expiry: not queued again
    assert.equal(chain.calls.length, 1)
    assert.equal(r.pending, 1)
    release()
    chain.hold = undefined
    await first
    assert.deepEqual(await flushed, { sent: 1, failed: 0, pending: 0 })
    assert.deepEqual(
      chain.calls.map((c) => c.subjects),
      [[subj(1)], [subj(2)]],
    )
  })

  test('the timer sends at most one transaction per interval', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] })
    const chain = new FakeChain()
    const r = new BanReporter(chain, { intervalMs: 1_000, batchMax: 100 })
    try {
      for (let i = 0; i < 250; i++) r.enqueue(subj(i), 2e9)
      const settle = () => new Promise((res) => setImmediate(res))
      t.mock.timers.tick(999)
      await settle()
      assert.equal(chain.calls.length, 0, 'nothing before the first interval')
      const seen: number[] = []
      for (let k = 0; k < 4; k++) {
        t.mock.timers.tick(1_000 - (k === 0 ? 999 : 0))
        await settle()
        seen.push(chain.calls.length)
      }
      assert.deepEqual(seen, [1, 2, 3, 3])
      assert.deepEqual(
        chain.calls.map((c) => c.subjects.length),
        [100, 100, 50],
      )
    } finally {
      r.stop()
    }
  })

  test('stop() ends the timer; flush() still sends what is queued, in ceil(n / batchMax) transactions', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] })
    const chain = new FakeChain()
    const r = new BanReporter(chain, { intervalMs: 1_000, batchMax: 100 })
    for (let i = 0; i < 250; i++) r.enqueue(subj(i), 2e9)
    r.stop()
    t.mock.timers.tick(5_000)
    await new Promise((res) => setImmediate(res))
    assert.equal(chain.calls.length, 0)
    assert.deepEqual(await r.flush(), { sent: 3, failed: 0, pending: 0 })
    assert.equal(chain.calls.length, 3)
  })

  test('invalid input is ignored with a warning, never thrown', () => {
    const log = recordingLogger()
    const r = new BanReporter(new FakeChain(), reporterOpts({ logger: log }))
    r.enqueue('203.0.113.5', 2e9)
    r.enqueue('0x1234', 2e9)
    r.enqueue(subj(1), NaN)
    r.enqueue(subj(1), -5)
    r.enqueue(subj(1), Date.UTC(2030, 0, 1)) // milliseconds by mistake
    assert.equal(r.pending, 0)
    assert.equal(log.lines.filter((l) => l.level === 'warn').length, 5)
  })

  test('options are validated', () => {
    assert.throws(() => new BanReporter(new FakeChain(), reporterOpts({ intervalMs: 0 })), RangeError)
    assert.throws(() => new BanReporter(new FakeChain(), reporterOpts({ batchMax: 0 })), RangeError)
  })
})

/** A stand-in for the outbox that records every intent (and can fail its disk write). */
class FakeOutbox {
  intents: IntentInput[] = []
  failNext = 0
  async enqueue(intent: IntentInput): Promise<EnqueueResult> {
    this.intents.push(intent)
    if (this.failNext > 0) {
      this.failNext--
      return { id: '', deduped: false, durable: false, error: 'the outbox is closed' }
    }
    return { id: String(this.intents.length), deduped: false, durable: true }
  }
}

describe('BanReporter through the outbox', () => {
  test('a batch becomes one recordBans intent: subjects, untils and reasons as the contract takes them', async () => {
    const outbox = new FakeOutbox()
    const reports: { ok: boolean; intent?: string; hash?: string }[] = []
    const r = new BanReporter({ reporter: outbox, ...reporterOpts({ reason: 'auth-failures', onReport: (x) => reports.push(x) }) })
    r.enqueue(subj(1), 1_700_000_000)
    r.enqueue(subj(2), 1_700_000_000, 'repeated refusals for one identity')
    r.enqueue(subj(1), 1_700_000_005)
    await r.tick()
    assert.deepEqual(outbox.intents, [{ kind: 'bans', method: 'recordBans', args: [[subj(1), subj(2)], [1_700_000_005, 1_700_000_000], 'auth-failures; repeated refusals for one identity'] }])
    assert.deepEqual(reports, [{ ok: true, subjects: 2, hash: undefined, intent: '1' }])
    assert.equal(r.pending, 0)
    assert.equal(r.transactions, 1)
  })

  test('rate limit and batch size hold: 5,000 bans, one intent of batchMax per interval', async () => {
    const outbox = new FakeOutbox()
    const r = new BanReporter(outbox, reporterOpts({ maxQueue: 10_000 }))
    for (let i = 0; i < 5_000; i++) r.enqueue(subj(i), 2e9)
    await r.tick()
    await r.tick()
    assert.equal(outbox.intents.length, 2)
    assert.ok(outbox.intents.every((x) => (x.args[0] as string[]).length === 100))
    assert.equal(r.pending, 4_800)
  })

  test('a batch the outbox refused (closed) is kept and handed over again', async () => {
    const outbox = new FakeOutbox()
    const log = recordingLogger()
    const r = new BanReporter(outbox, reporterOpts({ logger: log }))
    r.enqueue(subj(1), 2e9)
    outbox.failNext = 1
    await r.tick()
    assert.equal(r.pending, 1)
    assert.equal(r.failures, 1)
    assert.ok(log.lines.some((l) => l.level === 'warn' && /retry/.test(l.msg)))
    await r.tick()
    assert.equal(r.pending, 0)
    assert.equal(outbox.intents.length, 2)
  })
})

describe('BanReporter on a real chain (anvil), through the outbox', () => {
  // Two device addresses (not accounts of the chain: only their subjects go on chain).
  const DEVICE_A = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'
  const DEVICE_B = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65'
  let fx: ChainFixture
  before(async () => {
    fx = await chainFixture()
    await fx.as(0).addReporter(fx.wallet(1).address, 'proxy ban reporter')
  })
  after(async () => {
    await fx?.close()
  })

  const outboxFor = (i: number): Promise<Outbox> => openOutbox({ dir: mkdtempSync(join(tmpdir(), 'flytrap-bans-')), client: fx.as(i), pollMs: 25, retryBaseMs: 50, retryMaxMs: 100, maxAttempts: 1_000 })

  async function bannedEvents(fromBlock: number) {
    const client = fx.as(0)
    if (fromBlock > (await fx.provider.getBlockNumber())) return []
    const topic = client.contract.interface.getEvent('Banned')!.topicHash
    const logs = await fx.provider.getLogs({ address: client.address, topics: [topic], fromBlock, toBlock: 'latest' })
    return client.parseLogs(logs).map((e) => ({
      tx: e.log.transactionHash,
      subject: String(e.args[0]),
      reporter: String(e.args[1]),
      until: Number(e.args[2]),
      reason: String(e.args[3]),
    }))
  }

  test('bans arrive as Banned events, batched into the fewest transactions', async () => {
    const KEY = 'deployment-ban-key'
    const from = (await fx.provider.getBlockNumber()) + 1
    const outbox = await outboxFor(1)
    const confirmed: string[] = []
    outbox.on('confirmed', (c) => confirmed.push(c.hash))
    const reports: { ok: boolean; intent?: string }[] = []
    const r = new BanReporter(outbox, { intervalMs: 60_000, batchMax: 100, autoStart: false, reason: 'auth-failures', onReport: (x) => reports.push(x) })
    try {
      const until = Date.UTC(2030, 0, 1) / 1000 // unix seconds
      const first = [
        subjectForIp('203.0.113.5', KEY)!,
        subjectForIp('2001:db8::7', KEY)!,
        subjectForIp('198.51.100.1', KEY)!,
        subjectForAddress(DEVICE_A),
        subjectForAddress(DEVICE_B),
      ]
      for (const s of first) r.enqueue(s, until)
      r.enqueue(subjectForIp('::ffff:203.0.113.5', KEY)!, until) // the same IP spelled differently
      r.enqueue(subjectForAddress(DEVICE_A.toLowerCase()), until)
      await r.tick()
      assert.deepEqual(reports.map((x) => x.ok), [true])
      assert.equal(await outbox.drain(20_000), true) // in order: the first batch is mined before the flood's

      const flood = Array.from({ length: 250 }, (_, i) => subjectForIp(`10.9.${i >> 8}.${i & 255}`, KEY)!)
      for (const s of flood) r.enqueue(s, until + 60)
      assert.deepEqual(await r.flush(), { sent: 3, failed: 0, pending: 0 })
      r.stop()
      assert.equal(await outbox.drain(20_000), true)

      const events = await bannedEvents(from)
      assert.equal(events.length, 255)
      const byTx = new Map<string, typeof events>()
      for (const e of events) byTx.set(e.tx, [...(byTx.get(e.tx) ?? []), e])
      assert.equal(byTx.size, 4, 'one transaction for the first five, three for 250')
      assert.deepEqual(
        [...byTx.values()].map((v) => v.length).sort((a, b) => a - b),
        [5, 50, 100, 100],
      )
      assert.deepEqual(
        events.slice(0, 5).map((e) => e.subject),
        first,
      )
      assert.deepEqual(new Set(events.slice(5).map((e) => e.subject)), new Set(flood))
      assert.ok(events.every((e) => e.reporter === fx.wallet(1).address && e.reason === 'auth-failures'))
      assert.ok(events.slice(0, 5).every((e) => e.until === until))
      assert.ok(events.slice(5).every((e) => e.until === until + 60))
      assert.deepEqual(new Set(confirmed), new Set(byTx.keys()))
      assert.equal(r.transactions, 4)
    } finally {
      r.stop()
      await outbox.close()
    }
  })

  test('a reporter the contract does not know: the outbox keeps retrying, and the bans go through once it is registered', async () => {
    const from = (await fx.provider.getBlockNumber()) + 1
    const outbox = await outboxFor(2)
    const r = new BanReporter(outbox, { intervalMs: 60_000, batchMax: 100, autoStart: false })
    try {
      r.enqueue(subjectForAddress(DEVICE_B), Date.UTC(2030, 0, 1) / 1000)
      await r.tick()
      assert.equal(r.pending, 0, 'handed over to the outbox at once')
      const deadline = Date.now() + 10_000
      while (outbox.status().failedAttempts < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25))
      assert.ok(outbox.status().failedAttempts >= 2, 'refused (NotReporter) and retried')
      assert.deepEqual(await bannedEvents(from), [])
      await fx.as(0).addReporter(fx.wallet(2).address, 'second proxy')
      assert.equal(await outbox.drain(10_000), true)
      const events = await bannedEvents(from)
      assert.deepEqual(
        events.map((e) => [e.subject, e.reporter]),
        [[subjectForAddress(DEVICE_B), fx.wallet(2).address]],
      )
    } finally {
      r.stop()
      await outbox.close()
    }
  })
})
