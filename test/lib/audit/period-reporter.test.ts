/**
 * The period reporter: exact epoch-aligned periods (injected clock), a bounded number of writes per period
 * whatever the traffic, receivers counted by deliveries, every count taken from the durable journal (a
 * restart, a crash, a stale snapshot cannot change them); then the whole path on anvil (decisions →
 * journal → reporting → outbox → events, the anchor equal to the journal's root).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256, toUtf8Bytes } from 'ethers'
import { startReporting, CONNECT_TOPIC, OTHER_TOPIC, type Reporting, type ReportingOptions } from '../../../src/lib/audit/period-reporter.js'
import { openOutbox, type EnqueueResult, type IntentInput } from '../../../src/lib/chain/outbox.js'
import { openJournal, type Journal } from '../../../src/lib/audit/journal.js'
import { createRecorder } from '../../../src/lib/audit/recorder.js'
import { emptyTally } from '../../../src/lib/audit/tally.js'
import { membersRecords } from '../../../src/lib/audit/sensitive-members.js'
import { rangeIndex, readIndexRows } from '../../../src/lib/audit/journal-files.js'
import { verifyJournal } from '../../../src/lib/audit/verify.js'
import type { Logger } from '../../../src/lib/log.js'
import type { DecisionEvent } from '../../../src/lib/policy/types.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'

const ZERO32 = '0x' + '00'.repeat(32)

const P = 60_000 // one-minute periods
const K = 28_333_333 // a period index: [K·P, (K+1)·P)
const id = (name: string) => keccak256(toUtf8Bytes(name))
const addr = (i: number) => `0x${(0xabc000 + i).toString(16).padStart(40, '0')}`
const tmp = () => mkdtempSync(join(tmpdir(), 'flytrap-reporting-'))

/** An outbox stand-in with the real one's dedupe semantics. */
class FakeOutbox {
  readonly dir: string
  intents: IntentInput[] = []
  private keys = new Set<string>()
  constructor(dir = tmp()) {
    this.dir = dir
  }
  async enqueue(i: IntentInput): Promise<EnqueueResult> {
    if (i.dedupeKey && this.keys.has(i.dedupeKey)) return { id: '', deduped: true, durable: true }
    if (i.dedupeKey) this.keys.add(i.dedupeKey)
    this.intents.push(i)
    return { id: String(this.intents.length), deduped: false, durable: true }
  }
  of(kind: IntentInput['kind']) {
    return this.intents.filter((i) => i.kind === kind)
  }
}

function clock(start: number) {
  const c = { t: start, now: () => c.t }
  return c
}

const decision = (d: Partial<DecisionEvent> & Pick<DecisionEvent, 'kind' | 'allowed'>): DecisionEvent => ({ reason: d.allowed ? 'granted' : 'not-member', ip: '198.51.100.7', ...d })

/** A real journal on the injected clock, fed through the recorder as the proxy feeds it. */
async function journalAt(c: { now: () => number }, dataDir = tmp()) {
  const journal = await openJournal({ dataDir, periodMs: P, now: c.now })
  const rec = createRecorder(journal)
  return { journal, dataDir, feed: (d: DecisionEvent) => void rec.decision(d) }
}

/**
 * Opens commitment-form sensitive intents (recordSensitive: counts + members root) against the journal: checks
 * that counts and root are those of the journal's member records for that topic and period, and returns the
 * records as the clear tuple [topic, from, to, publishers, published, receivers, received] for comparison.
 */
async function opened(journal: Pick<Journal, 'periodTally'>, intents: readonly IntentInput[]): Promise<unknown[][]> {
  const out: unknown[][] = []
  for (const i of intents) {
    assert.equal(i.method, 'recordSensitive')
    const [topic, from, to, publishers, published, receivers, received, root] = i.args as [string, number, number, number, number, number, number, string]
    assert.equal(i.args.length, 8)
    const tally = await journal.periodTally((from * 1000) / P)
    const name = [...tally.sensitive.keys()].find((n) => id(n) === topic)!
    const c = membersRecords(tally.sensitive.get(name)!)
    assert.deepEqual([publishers, published, receivers, received, root], [c.publishers, c.published, c.receivers, c.received, c.membersRoot], 'counts and root are the journal records\'')
    const pub = c.records.filter((r) => r.role === 'publisher')
    const recv = c.records.filter((r) => r.role === 'receiver')
    out.push([topic, from, to, pub.map((r) => r.address), pub.map((r) => r.count), recv.map((r) => r.address), recv.map((r) => r.count)])
  }
  return out
}

async function start(outbox: FakeOutbox, c: { now: () => number }, journal: Journal, o: Partial<ReportingOptions> = {}): Promise<Reporting> {
  return startReporting({ outbox, journal, now: c.now, periodMs: P, autoStart: false, ...o })
}

describe('reporting: periods, from the journal', () => {
  test('boundaries are exact and epoch-aligned: the last millisecond belongs to one period, the next to the next', async () => {
    const outbox = new FakeOutbox()
    const c = clock(K * P + 5_000)
    const { journal, feed, dataDir } = await journalAt(c)
    const r = await start(outbox, c, journal)
    c.t = (K + 1) * P - 1
    feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'plant/valve', address: addr(1) }))
    feed(decision({ kind: 'publish', allowed: false, topic: 'plant/secret', address: addr(2) }))
    await r.tick()
    assert.equal(outbox.intents.length, 0, 'nothing before the period ends')
    c.t = (K + 1) * P
    feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'plant/valve', address: addr(3) }))
    await r.tick()
    const from = (K * P) / 1000
    const to = ((K + 1) * P) / 1000
    const rootK = await journal.periodRoot(K)
    assert.deepEqual(await opened(journal, outbox.of('sensitive')), [[id('plant/valve'), from, to, [addr(1)], [1], [], []]])
    assert.deepEqual(outbox.of('denied').map((i) => i.args), [[from, to, [id('plant/secret')], [1]]])
    // The link carries the period's scope index root, whose rows were stored before it was enqueued.
    const indexK = await rangeIndex(dataDir, { fromTime: from, toTime: to })
    assert.notEqual(indexK.root, ZERO32)
    assert.deepEqual(outbox.of('anchor').map((i) => i.args), [[from, to, 1, 2, rootK.root, indexK.root, rootK.prevChain, rootK.chain]])
    assert.deepEqual(await readIndexRows(dataDir, { fromTime: from, toTime: to }), indexK.rows)
    assert.ok(indexK.rows.some((row) => row.key === `client:${addr(2).toLowerCase()}` && row.seqs!.join() === '2'))
    assert.equal(rootK.count, 2)
    assert.equal(r.status().period, K + 1)

    c.t = (K + 3) * P + 17 // two periods later, without traffic in between
    await r.tick()
    assert.deepEqual((await opened(journal, outbox.of('sensitive')))[1], [id('plant/valve'), to, to + 60, [addr(3)], [1], [], []])
    const rootK1 = await journal.periodRoot(K + 1)
    const indexK1 = await rangeIndex(dataDir, { fromTime: to, toTime: to + 60 })
    // The anchor sequence continues: K+1 from seq 3 and the chain value after K; the empty K+2 is a link too.
    assert.deepEqual(outbox.of('anchor').slice(1).map((i) => i.args), [
      [to, to + 60, 3, 1, rootK1.root, indexK1.root, rootK.chain, rootK1.chain],
      [to + 60, to + 120, 4, 0, ZERO32, ZERO32, rootK1.chain, rootK1.chain],
    ])
    assert.equal(await readIndexRows(dataDir, { fromTime: to + 60, toTime: to + 120 }), null, 'an empty range has no index file')
    assert.equal(outbox.intents.length, 6, 'K: sensitive, denied, anchor; K+1: sensitive, anchor; K+2: an empty anchor')
    await r.stop()
    await journal.close()
  })

  test('decisions straddling a boundary: each period reports exactly the entries the journal dates in it', async () => {
    const outbox = new FakeOutbox()
    const c = clock((K + 1) * P - 30)
    const { journal, feed } = await journalAt(c)
    const r = await start(outbox, c, journal)
    // 60 sensitive publishes, one per millisecond, in one turn (one write batch): 30 before the boundary, 30 after.
    for (let i = 0; i < 60; i++) {
      feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'vault', address: addr(1) }))
      c.t++
    }
    c.t = (K + 2) * P
    await r.tick()
    const published = (await opened(journal, outbox.of('sensitive'))).map((a) => (a[4] as number[])[0])
    assert.deepEqual(published, [30, 30])
    for (const k of [K, K + 1]) assert.equal((await journal.periodTally(k)).decisions, 30)
    await r.stop()
    await journal.close()
  })

  test('sensitive receivers are counted by deliveries, not by SUBSCRIBE packets', async () => {
    const outbox = new FakeOutbox()
    const c = clock(K * P)
    const { journal, feed } = await journalAt(c)
    const r = await start(outbox, c, journal)
    const t = 'hospital/ward-3/vitals'
    feed(decision({ kind: 'subscribe', allowed: true, sensitive: true, topic: t, address: addr(1) }))
    feed(decision({ kind: 'subscribe', allowed: true, sensitive: true, topic: t, address: addr(9) })) // subscribes, never receives
    for (let i = 0; i < 3; i++) feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: t, address: addr(1) }))
    feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: t, address: addr(2).toUpperCase().replace('0X', '0x') }))
    feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: t, address: addr(5) }))
    feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: t, address: addr(5) }))
    feed(decision({ kind: 'publish', allowed: true, sensitive: false, topic: 'weather', address: addr(5) })) // not sensitive
    feed(decision({ kind: 'deliver', allowed: false, sensitive: true, topic: t, address: addr(7) })) // dropped: neither
    c.t = (K + 1) * P
    await r.tick()
    const [report] = outbox.of('sensitive')
    assert.deepEqual((await opened(journal, [report!]))[0], [id(t), (K * P) / 1000, ((K + 1) * P) / 1000, [addr(5)], [2], [addr(1), addr(2)], [3, 1]])
    assert.equal(outbox.of('sensitive').length, 1)
    assert.equal(outbox.of('denied').length, 0, 'a dropped delivery is not an attempt by the receiver')
    await r.stop()
    await journal.close()
  })

  test('the form follows the contract: commitments unless it allows clear lists; an unreadable flag means commitments', async () => {
    const forms: Record<string, string[]> = {}
    for (const [label, flag] of [
      ['absent', undefined],
      ['false', async () => false],
      ['unreadable', async () => Promise.reject(new Error('rpc down'))],
      ['true', async () => true],
    ] as const) {
      const outbox = new FakeOutbox()
      const c = clock(K * P)
      const { journal, feed } = await journalAt(c)
      const r = await start(outbox, c, journal, flag ? { publicSensitiveLists: flag } : {})
      feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'ward/vitals', address: addr(1) }))
      c.t = (K + 1) * P
      await r.tick()
      forms[label] = outbox.of('sensitive').map((i) => `${i.method} ${(i.args as unknown[]).some((x) => JSON.stringify(x).includes(addr(1).slice(2))) ? 'names' : 'no address'}`)
      await r.stop()
      await journal.close()
    }
    assert.deepEqual(forms, { absent: ['recordSensitive no address'], false: ['recordSensitive no address'], unreadable: ['recordSensitive no address'], true: ['recordSensitiveClear names'] })
  })

  test('a commitment covers every address the journal counted (no per-report cap), in constant size', async () => {
    const outbox = new FakeOutbox()
    const c = clock(K * P)
    const { journal, feed } = await journalAt(c)
    const r = await start(outbox, c, journal, { sensitive: { maxAddresses: 50 } })
    for (let i = 0; i < 300; i++) feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: 'vault', address: addr(i) }))
    c.t = (K + 1) * P
    await r.tick()
    const [report] = outbox.of('sensitive')
    assert.deepEqual((report!.args as unknown[]).slice(3, 7), [0, 0, 300, 300])
    assert.equal(((await opened(journal, [report!]))[0]![5] as string[]).length, 300)
    assert.equal(r.status().omittedAddresses, 0)
    await r.stop()
    await journal.close()
  })

  test('refused attempts: keccak of the topic or filter; refused connects under $connect', async () => {
    const outbox = new FakeOutbox()
    const c = clock(K * P)
    const { journal, feed } = await journalAt(c)
    const r = await start(outbox, c, journal)
    feed(decision({ kind: 'connect', allowed: false, reason: 'signature' }))
    feed(decision({ kind: 'connect', allowed: false, reason: 'banned' }))
    feed(decision({ kind: 'connect', allowed: true, reason: 'tls', address: addr(1) }))
    feed(decision({ kind: 'subscribe', allowed: false, topic: 'a/#', address: addr(1) }))
    feed(decision({ kind: 'will', allowed: false, topic: 'a/will', address: addr(1) }))
    feed(decision({ kind: 'publish', allowed: false, topic: 'a/b', address: addr(1) }))
    feed(decision({ kind: 'publish', allowed: false, topic: 'a/b', address: addr(2) }))
    c.t = (K + 1) * P
    await r.tick()
    const [d] = outbox.of('denied')
    const [, , topics, counts] = d!.args as [number, number, string[], number[]]
    const got = Object.fromEntries(topics.map((x, i) => [x, counts[i]]))
    assert.deepEqual(got, { [id(CONNECT_TOPIC)]: 2, [id('a/#')]: 1, [id('a/will')]: 1, [id('a/b')]: 2 })
    await r.stop()
    await journal.close()
  })

  test('a flood of 10,000 decisions: one write per period per kind (sensitive: at most maxTopics), sizes capped', async () => {
    const outbox = new FakeOutbox()
    const c = clock(K * P)
    const { journal, feed } = await journalAt(c)
    // The clear form (a publicSensitiveLists deployment) caps addresses per report.
    const r = await start(outbox, c, journal, { sensitive: { maxTopics: 4, maxAddresses: 50 }, denied: { maxTopics: 32 }, publicSensitiveLists: async () => true })
    for (let i = 0; i < 10_000; i++) {
      c.t = K * P + Math.floor((i * (P - 1)) / 10_000)
      switch (i % 4) {
        case 0: // refused publishes on ever new topics, from ever new addresses
          feed(decision({ kind: 'publish', allowed: false, topic: `flood/${i}`, address: addr(i) }))
          break
        case 1: // refused connects
          feed(decision({ kind: 'connect', allowed: false, reason: 'signature' }))
          break
        case 2: // sensitive publishes on one topic from ever new addresses
          feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'vault', address: addr(i) }))
          break
        default: // deliveries on ever new sensitive topics
          feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: `vault/${i}`, address: addr(i) }))
      }
    }
    assert.equal(outbox.intents.length, 0, 'nothing is written during the period')
    c.t = (K + 1) * P
    await r.tick()
    assert.equal(outbox.of('anchor').length, 1)
    assert.equal(outbox.of('denied').length, 1)
    assert.equal(outbox.of('sensitive').length, 4, 'maxTopics sensitive reports, not one per topic')
    const [, , topics, counts] = outbox.of('denied')[0]!.args as [number, number, string[], number[]]
    assert.equal(topics.length, 32)
    assert.ok(topics.includes(id(OTHER_TOPIC)))
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      5_000,
      'every refusal is counted',
    )
    const vault = outbox.of('sensitive').find((i) => i.args[0] === id('vault'))!
    assert.equal((vault.args[3] as string[]).length, 50, 'publishers capped at maxAddresses')
    assert.equal(r.status().omittedAddresses, 2_500 - 50)
    assert.ok(r.status().droppedTopics > 0)
    await r.stop()
    await journal.close()
  })

  test('options: the journal is required; one with another period length is refused; periods are whole seconds', async () => {
    const j = { periodMs: P, periodTally: async () => emptyTally() }
    await assert.rejects(startReporting({ outbox: new FakeOutbox(), journal: undefined as unknown as typeof j, autoStart: false }), /needs the journal/)
    await assert.rejects(startReporting({ outbox: new FakeOutbox(), journal: { ...j, periodMs: 2 * P }, periodMs: P, autoStart: false }), /differs from the journal/)
    await assert.rejects(startReporting({ outbox: new FakeOutbox(), journal: { periodTally: j.periodTally }, periodMs: 1_500, autoStart: false }), RangeError)
    const r = await startReporting({ outbox: new FakeOutbox(), journal: j, autoStart: false })
    assert.equal(r.periodMs, P, "the journal's period by default")
    await r.stop()
  })
})

describe('reporting: restarts and crashes', () => {
  test('restart mid-period: both runs\' decisions are reported once, with exact bounds', async () => {
    const dataDir = tmp()
    const outbox = new FakeOutbox(join(dataDir, 'outbox'))
    const c = clock(K * P + 10_000)
    const a = await journalAt(c, dataDir)
    const r1 = await start(outbox, c, a.journal)
    a.feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: 'vault', address: addr(1) }))
    a.feed(decision({ kind: 'publish', allowed: false, topic: 'vault/x', address: addr(2) }))
    await r1.stop()
    await a.journal.close()

    c.t = K * P + 40_000 // same period
    const b = await journalAt(c, dataDir)
    const r2 = await start(outbox, c, b.journal)
    b.feed(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: 'vault', address: addr(1) }))
    b.feed(decision({ kind: 'publish', allowed: false, topic: 'vault/x', address: addr(2) }))
    await b.journal.flush()
    assert.equal(outbox.intents.length, 0)
    c.t = (K + 1) * P
    await r2.tick()
    await r2.stop()
    const from = (K * P) / 1000
    assert.deepEqual(await opened(b.journal, outbox.of('sensitive')), [[id('vault'), from, from + 60, [], [], [addr(1)], [2]]])
    assert.deepEqual(outbox.of('denied').map((i) => i.args), [[from, from + 60, [id('vault/x')], [2]]])
    assert.deepEqual(outbox.of('anchor').map((i) => i.args[3]), [4])
    await b.journal.close()
  })

  test('a crash (no stop, a stale snapshot from an older version on disk): the next start closes the period from the journal, once', async () => {
    const dataDir = tmp()
    const dir = join(dataDir, 'outbox')
    const outbox = new FakeOutbox(dir)
    const c = clock(K * P + 1_000)
    const a = await journalAt(c, dataDir)
    await start(outbox, c, a.journal) // never stopped: the process dies
    for (let i = 0; i < 3; i++) a.feed(decision({ kind: 'publish', allowed: true, sensitive: true, topic: 'vault', address: addr(4) }))
    a.feed(decision({ kind: 'subscribe', allowed: false, topic: 'vault/#', address: addr(5) }))
    // What the old reporter had saved 10 s earlier: one publish, no refusal.
    writeFileSync(join(dir, 'reporting.json'), JSON.stringify({ version: 1, periodMs: P, period: K, decisions: 1, sensitive: { vault: { pub: { [addr(4)]: 1 }, recv: {}, omitted: 0 } }, droppedTopics: [], denied: {}, deniedTotal: 0, deniedWindowMs: K * P, deniedFlushes: 0 }))
    await a.journal.close() // what was acknowledged is on disk; nothing else of the run survives
    c.t = (K + 2) * P + 3_000 // it comes back two periods later
    const b = await journalAt(c, dataDir)
    const r2 = await start(outbox, c, b.journal)
    const from = (K * P) / 1000
    assert.deepEqual(
      outbox.intents.map((i) => [i.kind, i.args[0]]),
      [
        ['sensitive', id('vault')],
        ['denied', from],
        ['anchor', from],
        ['anchor', from + 60], // K+1 had no entries: an empty link, so the gap is visible on chain
      ],
    )
    assert.deepEqual((await opened(b.journal, outbox.of('sensitive')))[0], [id('vault'), from, from + 60, [addr(4)], [3], [], []], 'the journal\'s count, not the snapshot\'s')
    assert.deepEqual(outbox.of('anchor')[0]!.args[3], (await b.journal.periodRoot(K)).count)
    assert.equal(r2.status().period, K + 2)
    assert.equal(r2.status().lastClosed, K)
    await r2.stop()
    assert.equal(JSON.parse(readFileSync(join(dir, 'reporting.json'), 'utf8')).lastClosed, K, 'the cursor')
    // As if r2 had died after enqueueing but before saving its cursor: K is closed again, enqueuing nothing twice.
    writeFileSync(join(dir, 'reporting.json'), JSON.stringify({ version: 2, periodMs: P, lastClosed: K - 1 }))
    const r3 = await start(outbox, c, b.journal)
    assert.equal(r3.status().lastClosed, K)
    assert.equal(outbox.intents.length, 4, 'the dedupe keys make closing idempotent')
    await r3.stop()
    await b.journal.close()
  })
})

describe('reporting on a real chain, with the journal and the outbox', () => {
  let fx: ChainFixture
  before(async () => {
    fx = await chainFixture()
    await fx.as(0).addReporter(fx.wallet(1).address, 'proxy')
  })
  after(async () => {
    await fx?.close()
  })

  test('one period of traffic → one anchor (the journal’s root), one denied summary, one sensitive report per topic', async () => {
    const dataDir = tmp()
    const c = clock(K * P + 1_000)
    const { journal, feed } = await journalAt(c, dataDir)
    const outbox = await openOutbox({ dir: join(dataDir, 'outbox'), client: fx.as(1), pollMs: 25 })
    const r = await startReporting({ outbox, journal, now: c.now, autoStart: false })
    const from = (await fx.provider.getBlockNumber()) + 1
    try {
      const events: DecisionEvent[] = []
      for (let i = 0; i < 300; i++) {
        events.push(decision({ kind: 'deliver', allowed: true, sensitive: true, topic: 'vault', address: addr(i % 5) }))
        events.push(decision({ kind: 'publish', allowed: i % 3 !== 0, sensitive: true, topic: 'vault', address: addr(10 + (i % 2)) }))
      }
      for (const e of events) {
        c.t += 10
        feed(e)
      }
      await journal.flush()
      c.t = (K + 1) * P
      await r.tick()
      assert.equal(await outbox.drain(20_000), true)
      const client = fx.as(0)
      const logs = await fx.provider.getLogs({ address: client.address, fromBlock: from, toBlock: 'latest' })
      const parsed = client.parseLogs(logs)
      assert.deepEqual(parsed.map((e) => e.name).sort(), ['Anchored', 'DeniedSummary', 'SensitiveReport'])
      const anchored = parsed.find((e) => e.name === 'Anchored')!
      const root = await journal.periodRoot(K)
      assert.equal((await journal.periodTally(K)).decisions, 600, 'identical decisions of a batch share entries')
      assert.deepEqual([String(anchored.args.root), Number(anchored.args.count), Number(anchored.args.fromTime), Number(anchored.args.toTime)], [root.root, root.count, (K * P) / 1000, ((K + 1) * P) / 1000])
      const s = parsed.find((e) => e.name === 'SensitiveReport')!
      // On chain: 5 receivers of 60 deliveries each, 2 publishers of 100 publishes each, and the members' root.
      const members = membersRecords((await journal.periodTally(K)).sensitive.get('vault')!)
      assert.deepEqual([Number(s.args.publishers), Number(s.args.published), Number(s.args.receivers), Number(s.args.received), String(s.args.membersRoot)], [2, 200, 5, 300, members.membersRoot])
      assert.deepEqual(members.records.map((m) => [m.role, m.count]), [...Array(2).fill(['publisher', 100]), ...Array(5).fill(['receiver', 60])])
      const d = parsed.find((e) => e.name === 'DeniedSummary')!
      assert.deepEqual((d.args.counts as bigint[]).map(Number), [100])
    } finally {
      await r.stop()
      await outbox.close()
      await journal.close()
    }
  })

  test('the anchor sequence continues across a restart from the contract\'s cursor (local cursor lost), empty periods included; a journal that does not continue it stops anchoring', async () => {
    await fx.as(0).addReporter(fx.wallet(2).address, 'proxy 2')
    const client = fx.as(2)
    const anchorCursor = () => client.anchorCursor(fx.wallet(2).address)
    const K2 = K + 100
    const dataDir = tmp()
    const dir = join(dataDir, 'reporting')
    const c = clock(K2 * P + 1_000)
    const journal = await openJournal({ dataDir, periodMs: P, now: c.now })
    const fromBlock = (await fx.provider.getBlockNumber()) + 1
    const run = async (fn: (r: Reporting) => Promise<void>, logger?: Logger, j = journal) => {
      const outbox = await openOutbox({ dir: join(dataDir, 'outbox'), client, pollMs: 25 })
      const r = await startReporting({ outbox, journal: j, dir, anchorCursor, now: c.now, autoStart: false, logger })
      try {
        await fn(r)
        assert.equal(await outbox.drain(20_000), true)
      } finally {
        await r.stop()
        await outbox.close()
      }
    }
    const append = async (n: number) => {
      for (let i = 0; i < n; i++) {
        c.t += 10
        await journal.append({ kind: 'publish', outcome: 'allow', reason: 'member', address: addr(i), topic: 'vault' })
      }
    }
    await run(async (r) => {
      await append(3)
      c.t = (K2 + 1) * P + 500
      await r.tick()
      await append(2) // in K2+1; then the process stops mid-period
    })
    rmSync(join(dir, 'anchor-cursor.json')) // the local cursor is lost: the contract's says where to go on
    c.t = (K2 + 3) * P + 100
    await run(async () => {}) // start() catches up to the last ended period

    const logs = await fx.provider.getLogs({ address: client.address, topics: [client.contract.interface.getEvent('Anchored')!.topicHash], fromBlock, toBlock: 'latest' })
    const links = client.parseLogs(logs).map((e) => [Number(e.args[1]), Number(e.args[2]), Number(e.args[3]), Number(e.args[4])])
    const s = (k: number) => (k * P) / 1000
    assert.deepEqual(links, [
      [s(K2), s(K2 + 1), 1, 3],
      [s(K2 + 1), s(K2 + 2), 4, 2],
      [s(K2 + 2), s(K2 + 3), 6, 0], // the empty period is a link too
    ])
    const v = await verifyJournal({ dataDir, client: fx.as(0), fromBlock: fx.deployBlock, deadlineMs: 100 * 365 * 86_400_000, now: s(K2 + 3) * 1000 })
    assert.equal(v.ok, true, v.firstProblem ?? '')
    assert.deepEqual([v.anchors.verified, v.anchors.reporters], [3, [fx.wallet(2).address]])
    await journal.close()

    // Another journal (seqs from 1 again) under the same reporter key: refused by the sender before the chain would.
    const errors: string[] = []
    const log: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (m: string) => void errors.push(m), enabled: () => true }
    const other = tmp()
    c.t = (K2 + 3) * P + 200
    const j2 = await openJournal({ dataDir: other, periodMs: P, now: c.now })
    await j2.append({ kind: 'publish', outcome: 'allow', reason: 'member', address: addr(1), topic: 'vault' })
    const outbox = await openOutbox({ dir: join(other, 'outbox'), client, pollMs: 25 })
    const r = await startReporting({ outbox, journal: j2, dir: join(other, 'reporting'), anchorCursor, now: c.now, autoStart: false, logger: log })
    c.t = (K2 + 4) * P
    await r.tick()
    await r.stop()
    assert.equal(outbox.status().pending, 0, 'no anchor enqueued')
    await outbox.close()
    await j2.close()
    assert.ok(errors.some((m) => /anchoring stopped: the journal does not continue this reporter's anchors: they end at seq 5/.test(m)), errors.join('\n'))
  })
})
