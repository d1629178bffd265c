/**
 * `verifyJournal` / `verifyEntry`: every kind of tampering is detected and pinpointed (file, line, seq) by the
 * hash chain alone; against a real anvil, anchored roots verify, and what the chain cannot see (a journal
 * rewritten and re-chained, a truncated tail with its checkpoint removed) is caught by the anchors.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chainNext, encodeRecord, entryLeaf, parseRecord, type EntryInput, type JournalRecord } from '../../../src/lib/audit/entry.js'
import { openJournal, type PeriodRoot } from '../../../src/lib/audit/journal.js'
import { journalDir, rangeIndex, segmentName, storeIndexRows } from '../../../src/lib/audit/journal-files.js'
import { indexRootOfRows, keyHash, seqsDigest, type IndexRow } from '../../../src/lib/audit/scope-index.js'
import { fetchAnchors, verifyEntry, verifyJournal } from '../../../src/lib/audit/verify.js'
import { deployFlyTrap, FlyTrapClient, type AnchorArgs } from '../../../src/lib/chain/client.js'
import { loadReporterHistory } from '../../../src/lib/chain/reporters.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-verify-')

const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
/** Journals start two minutes ago (2 s periods), so anchors sent now are on time (default deadline 5 min). */
const T0 = Math.floor((Date.now() - 120_000) / 2_000) * 2_000
const ZERO32 = '0x' + '00'.repeat(32)
/** A period's root (and scope index root, when known) as the link the reporter anchors. */
const link = (p: PeriodRoot & { index?: string }): AnchorArgs => ({ fromTime: p.fromTime, toTime: p.toTime, firstSeq: p.firstSeq!, count: p.count, root: p.root, index: p.index ?? ZERO32, prevChain: p.prevChain!, chain: p.chain! })
const entry = (i: number): EntryInput => ({ kind: i % 4 === 0 ? 'subscribe' : 'publish', outcome: i % 3 === 0 ? 'deny' : 'allow', reason: i % 3 === 0 ? 'not-member' : 'member', address: ALICE, ip: '198.51.100.7', topic: `plant/line-${i}` })

/** A journal of `n` entries, `perPeriod` per 2-second period starting at t0, in segments of about `segBytes`. */
async function makeJournal(dataDir: string, n: number, opts: { perPeriod?: number; t0?: number; segBytes?: number } = {}) {
  const perPeriod = opts.perPeriod ?? n
  const c = { now: opts.t0 ?? T0 }
  const j = await openJournal({ dataDir, periodMs: 2_000, now: () => c.now, flushIntervalMs: 1, maxSegmentBytes: opts.segBytes ?? 1 << 20 })
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % perPeriod === 0) c.now = (Math.floor(c.now / 2_000) + 1) * 2_000
    await j.append(entry(i))
    c.now += 100
  }
  const periods: (PeriodRoot & { index: string })[] = []
  const first = Math.floor((opts.t0 ?? T0) / 2_000)
  for (let k = first; k <= j.periodOf(c.now); k++) {
    const p = await j.periodRoot(k)
    if (p.count > 0) periods.push({ ...p, index: (await rangeIndex(dataDir, p)).root })
  }
  await j.close()
  return periods
}

// ---- tampering, as an attacker with the files would do it
type Line = { file: string; index: number }
function segFiles(dataDir: string): string[] {
  return readdirSync(journalDir(dataDir))
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
}
function readSeg(dataDir: string, file: string): string[] {
  return readFileSync(join(journalDir(dataDir), file), 'utf8').split('\n').slice(0, -1)
}
function writeSeg(dataDir: string, file: string, lines: string[]): void {
  writeFileSync(join(journalDir(dataDir), file), lines.map((l) => l + '\n').join(''))
}
function locate(dataDir: string, seq: number): Line {
  for (const file of segFiles(dataDir)) {
    const index = readSeg(dataDir, file).findIndex((l) => parseRecord(l).seq === seq)
    if (index >= 0) return { file, index }
  }
  throw new Error(`seq ${seq} not found`)
}
function editLine(dataDir: string, seq: number, edit: (r: Extract<JournalRecord, { redacted: false }>) => JournalRecord): Line {
  const at = locate(dataDir, seq)
  const lines = readSeg(dataDir, at.file)
  lines[at.index] = encodeRecord(edit(parseRecord(lines[at.index]!) as Extract<JournalRecord, { redacted: false }>))
  writeSeg(dataDir, at.file, lines)
  return at
}
/** The careful attacker: change an entry, recompute its leaf and every later prev, and the checkpoint. */
function rewriteAndRechain(dataDir: string, seq: number, change: (e: Extract<JournalRecord, { redacted: false }>['entry']) => void): void {
  let chain: string | null = null
  for (const file of segFiles(dataDir)) {
    const lines = readSeg(dataDir, file).map((l) => {
      const r = parseRecord(l)
      if (r.seq < seq || r.redacted) {
        if (chain !== null) r.prev = chain
        chain = chainNext(r.prev, r.leaf)
        return r.seq < seq ? l : encodeRecord(r)
      }
      if (r.seq === seq) {
        change(r.entry)
        r.leaf = entryLeaf(r.salt, r.entry)
      }
      r.prev = chain!
      chain = chainNext(r.prev, r.leaf)
      return encodeRecord(r)
    })
    writeSeg(dataDir, file, lines)
  }
  const headFile = join(journalDir(dataDir), 'head.json')
  writeFileSync(headFile, JSON.stringify({ ...JSON.parse(readFileSync(headFile, 'utf8')), chain }))
}

describe('hash-chain tamper detection (no chain needed)', () => {
  test('an intact journal verifies; the report says anchors were not checked', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12, { perPeriod: 4 })
    const r = await verifyJournal({ dataDir })
    assert.equal(r.ok, true, r.firstProblem ?? '')
    assert.equal(r.chain.ok, true)
    assert.deepEqual([r.journal.entries, r.journal.firstSeq, r.journal.lastSeq, r.journal.redacted], [12, 1, 12, 0])
    assert.equal(r.anchors.checked, false)
    assert.match(r.anchors.reason ?? '', /anchors not checked/)
    assert.deepEqual(r.anchors.periods.map((p) => [p.status, p.local.count]), [['unanchored', 4], ['unanchored', 4], ['unanchored', 4]])
  })

  test('an edited field is pinpointed: that entry, its file and line', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12, { segBytes: 1_500 })
    const at = editLine(dataDir, 7, (r) => ({ ...r, entry: { ...r.entry, outcome: 'allow', reason: 'member' } }))
    const r = await verifyJournal({ dataDir })
    assert.equal(r.ok, false)
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [['content-altered', at.file, at.index + 1, 7]])
    assert.match(r.firstProblem ?? '', new RegExp(`${at.file}:${at.index + 1}: entry seq 7 was changed`))
  })

  test('an edited field with its leaf recomputed breaks the link into the next entry', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12)
    editLine(dataDir, 5, (r) => {
      const e = { ...r.entry, topic: 'plant/elsewhere' }
      return { ...r, entry: e, leaf: entryLeaf(r.salt, e) }
    })
    const r = await verifyJournal({ dataDir })
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.line, p.seq]), [['chain-broken', 6, 6]])
    assert.match(r.firstProblem ?? '', /link into seq 6 is broken: seq 5 was rewritten/)
  })

  test('a deleted line is named by its seq at the line where it is missing', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12)
    const file = segmentName(1)
    const lines = readSeg(dataDir, file)
    lines.splice(3, 1) // seq 4
    writeSeg(dataDir, file, lines)
    const r = await verifyJournal({ dataDir })
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [['missing', file, 4, 4]])
    assert.match(r.firstProblem ?? '', /seq 4 is missing before seq 5/)
  })

  test('two swapped lines are out-of-order at both lines, never "missing"', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12)
    const file = segmentName(1)
    const lines = readSeg(dataDir, file)
    ;[lines[8], lines[9]] = [lines[9]!, lines[8]!] // seq 9 and 10
    writeSeg(dataDir, file, lines)
    const r = await verifyJournal({ dataDir })
    assert.equal(r.ok, false)
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [
      ['out-of-order', file, 9, 10],
      ['out-of-order', file, 10, 9],
    ])
    assert.match(r.firstProblem ?? '', /:9: seq 10 comes before seq 9, found further on/)
    assert.ok(r.chain.problems.every((p) => !/missing/.test(p.message)), r.chain.problems.map((p) => p.message).join('\n'))
  })

  test('a line moved three places down: out-of-order where it left and where it is; a deletion next to it is still missing', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12)
    const file = segmentName(1)
    const lines = readSeg(dataDir, file)
    const [moved] = lines.splice(3, 1) // seq 4 …
    lines.splice(6, 0, moved!) // … now after seq 7
    lines.splice(9, 1) // and seq 10 deleted
    writeSeg(dataDir, file, lines)
    const r = await verifyJournal({ dataDir })
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.line, p.seq]), [
      ['out-of-order', 4, 5],
      ['out-of-order', 7, 4],
      ['missing', 10, 10],
    ])
  })

  test('a truncated tail is caught by the clean-close checkpoint', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 12)
    const file = segmentName(1)
    writeSeg(dataDir, file, readSeg(dataDir, file).slice(0, 9))
    const r = await verifyJournal({ dataDir })
    assert.deepEqual(r.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [['truncated', file, 10, 10]])
    assert.match(r.firstProblem ?? '', /ends at seq 9 but was closed cleanly at seq 12: seq 10\.\.12 are missing/)
  })

  test('a deleted segment, a damaged line and a foreign field are each located', async () => {
    const dataDir = tempData()
    await makeJournal(dataDir, 30, { segBytes: 1_500 })
    const files = segFiles(dataDir)
    assert.ok(files.length >= 4)
    const gone = parseRecord(readSeg(dataDir, files[1]!)[0]!).seq
    const next = parseRecord(readSeg(dataDir, files[2]!)[0]!).seq
    unlinkSync(join(journalDir(dataDir), files[1]!))
    const lines = readSeg(dataDir, files[3]!)
    lines[1] = lines[1]!.slice(0, 40)
    lines[2] = lines[2]!.replace('"kind"', '"note":"added later","kind"')
    writeSeg(dataDir, files[3]!, lines)
    const r = await verifyJournal({ dataDir })
    assert.deepEqual(
      r.chain.problems.map((p) => [p.kind, p.file, p.line]),
      [
        ['missing', files[2], 1],
        ['malformed', files[3], 2],
        ['malformed', files[3], 3],
      ],
    )
    assert.match(r.chain.problems[0]!.message, new RegExp(`seq ${gone}\\.\\.${next - 1} are missing`))
    assert.match(r.chain.problems[2]!.message, /unexpected field "note"/)
  })
})

describe('against anchors on a real chain', () => {
  let fx: ChainFixture
  before(async () => {
    fx = await chainFixture({ deploy: false })
  })
  after(async () => fx?.close())

  /** A fresh deployment per test (so anchors of one test are not another's), with two registered reporters. */
  async function deployment() {
    const d = await deployFlyTrap(fx.wallet(0))
    const admin = new FlyTrapClient(d.address, fx.wallet(0))
    await admin.addReporter(fx.wallet(1).address, 'proxy eu-1')
    await admin.addReporter(fx.wallet(2).address, 'proxy eu-2')
    return { admin, reporter: new FlyTrapClient(d.address, fx.wallet(1)), other: new FlyTrapClient(d.address, fx.wallet(2)), reader: new FlyTrapClient(d.address, fx.provider), fromBlock: d.block }
  }

  async function anchored(n = 12, perPeriod = 4) {
    const dep = await deployment()
    const dataDir = tempData()
    const periods = await makeJournal(dataDir, n, { perPeriod })
    for (const p of periods) await dep.reporter.anchor(link(p))
    return { dataDir, periods, ...dep, opts: { dataDir, client: dep.reader, fromBlock: dep.fromBlock } }
  }

  /** The operator's lie: period 0's index with one seq dropped from Alice's client row (rows re-sorted, digests redone). */
  function withoutOneSeq(rows: IndexRow[]): { rows: IndexRow[]; root: string; keyHash: string } {
    const key = `client:${ALICE.toLowerCase()}`
    const forged = rows.map((r) => (r.key === key ? { ...r, seqs: r.seqs!.slice(1), seqsDigest: seqsDigest(r.seqs!.slice(1)) } : r))
    assert.notDeepEqual(forged, rows)
    return { rows: forged, root: indexRootOfRows(forged), keyHash: keyHash(key) }
  }

  test('the operator anchors an index that omits one seq under a client key: index-mismatch naming that key hash', async () => {
    const dep = await deployment()
    const dataDir = tempData()
    const periods = await makeJournal(dataDir, 12, { perPeriod: 4 })
    const p0 = periods[0]!
    const honest = await rangeIndex(dataDir, p0)
    const lie = withoutOneSeq(honest.rows)
    // Consistent on his side: the rows on disk are the anchored ones, so bundles built from them would verify.
    await storeIndexRows(dataDir, p0, lie.rows)
    await dep.reporter.anchor({ ...link(p0), index: lie.root }) // the real contract takes it: it cannot know the entries
    for (const p of periods.slice(1)) await dep.reporter.anchor(link(p))
    const opts = { dataDir, client: dep.reader, fromBlock: dep.fromBlock }
    const r = await verifyJournal(opts)
    assert.equal(r.ok, false)
    assert.equal(r.chain.ok, true, 'the entries themselves are intact')
    const c0 = r.anchors.periods[0]!
    assert.deepEqual([c0.status, c0.indexKeyHash, r.anchors.indexMismatched, r.anchors.verified], ['index-mismatch', lie.keyHash, 1, 2])
    assert.match(r.firstProblem ?? '', new RegExp(`period .*: the scope index of this range is not the one of its entries: .*index/${p0.fromTime}-${p0.toTime}\\.json: .*first differing key hash ${lie.keyHash}`))

    // Without the rows on disk the anchored root alone still fails (no key can be named then).
    unlinkSync(join(journalDir(dataDir), 'index', `${p0.fromTime}-${p0.toTime}.json`))
    const bare = await verifyJournal(opts)
    assert.deepEqual([bare.ok, bare.anchors.periods[0]!.status, bare.anchors.periods[0]!.indexKeyHash], [false, 'index-mismatch', null])
    assert.match(bare.firstProblem ?? '', new RegExp(`commits to scope index ${lie.root}, the entries give ${honest.root}`))
  })

  test('an index row edited on disk fails verification; the honest rows verify', async () => {
    const { dataDir, periods, opts } = await anchored()
    const p1 = periods[1]!
    const honest = await rangeIndex(dataDir, p1)
    await storeIndexRows(dataDir, p1, honest.rows)
    const ok = await verifyJournal(opts)
    assert.equal(ok.ok, true, ok.firstProblem ?? '')
    assert.equal(ok.anchors.periods[1]!.index, honest.root)
    const file = join(journalDir(dataDir), 'index', `${p1.fromTime}-${p1.toTime}.json`)
    // An edit that keeps the row self-consistent (seqs and digest both changed)…
    const lie = withoutOneSeq(honest.rows)
    writeFileSync(file, JSON.stringify(lie.rows))
    const edited = await verifyJournal(opts)
    assert.deepEqual([edited.ok, edited.anchors.periods[1]!.status, edited.anchors.periods[1]!.indexKeyHash], [false, 'index-mismatch', lie.keyHash])
    // …and a bare edit of the seqs (the digest no longer matches).
    writeFileSync(file, JSON.stringify(honest.rows.map((r, i) => (i === 0 ? { ...r, seqs: [...r.seqs!, 99] } : r))))
    const bare = await verifyJournal(opts)
    assert.equal(bare.ok, false)
    assert.match(bare.firstProblem ?? '', /seqsDigest is not the digest of seqs/)
    writeFileSync(file, 'not json')
    assert.equal((await verifyJournal(opts)).ok, false)
  })

  test('an intact journal: every period verified against its anchor, entries proven', async () => {
    const { opts, periods } = await anchored()
    const r = await verifyJournal(opts)
    assert.equal(r.ok, true, r.firstProblem ?? '')
    assert.equal(r.anchors.checked, true)
    assert.deepEqual(r.anchors.periods.map((p) => [p.status, p.fromTime, p.local.count, p.anchors[0]?.reporter]), [
      ...periods.map((p) => ['verified', p.fromTime, 4, fx.wallet(1).address]),
      ['pending', periods[2]!.toTime, 0, undefined], // since then: not due yet (two periods, at least 5 minutes)
    ])
    assert.deepEqual([r.anchors.pending, r.anchors.unanchored, r.anchors.late, r.anchors.deadlineMs, r.anchors.periodMs], [1, 0, 0, 300_000, 2_000])
    assert.ok(r.anchors.periods.slice(0, 3).every((p) => p.delaySec! > 0 && p.anchors[0]!.firstSeq === p.local.firstSeq && p.anchors[0]!.chain.length === 66))
    const e = await verifyEntry({ ...opts, seq: 6 })
    assert.equal(e.ok, true, e.message)
    assert.equal(e.anchored, true)
    assert.equal(e.anchor?.root, periods[1]!.root)
    assert.deepEqual([e.proof.index, e.proof.count, e.contentMatches], [1, 4, true])
    assert.match(e.message, /proven by the root anchored in tx/)
  })

  test('a rewritten and re-chained journal passes the chain check, but not the anchor of its period', async () => {
    const { dataDir, opts, periods } = await anchored()
    rewriteAndRechain(dataDir, 6, (e) => {
      e.outcome = 'allow'
      e.reason = 'member'
      e.address = '0x0000000000000000000000000000000000000001'
    })
    const r = await verifyJournal(opts)
    assert.equal(r.chain.ok, true, 'the chain alone cannot see it')
    assert.equal(r.ok, false)
    // Period 3's entries still match its root, but the chain value it pins no longer does (it follows from period 2).
    assert.deepEqual(r.anchors.periods.filter((p) => p.anchors.length).map((p) => p.status), ['verified', 'mismatch', 'mismatch'])
    assert.equal(r.anchors.periods[1]!.fromTime, periods[1]!.fromTime)
    assert.match(r.firstProblem ?? '', /pins seq 5\.\.8 .*the entries seq 5\.\.8 differ from what was anchored.*re-chained/)
    assert.match(r.anchors.periods[2]!.message ?? '', /match the anchored root, but the hash chain after seq 12 .*follows from the change at seq 5\.\.8/)
    const e = await verifyEntry({ ...opts, seq: 6 })
    assert.equal(e.ok, false)
    assert.equal(e.anchored, false)
  })

  test('an edited entry: the chain check names it and the period mismatch points at it', async () => {
    const { dataDir, opts } = await anchored()
    const at = editLine(dataDir, 10, (r) => ({ ...r, entry: { ...r.entry, topic: 'plant/other' } }))
    const r = await verifyJournal(opts)
    const bad = r.anchors.periods.find((p) => p.status === 'mismatch')
    assert.deepEqual([bad?.culprit?.kind, bad?.culprit?.seq, bad?.culprit?.file, bad?.culprit?.line], ['content-altered', 10, at.file, at.index + 1])
    assert.equal(r.anchors.mismatched, 1)
    const e = await verifyEntry({ ...opts, seq: 10 })
    assert.deepEqual([e.ok, e.contentMatches], [false, false])
    assert.match(e.message, /seq 10 was changed/)
  })

  test('a truncated tail with its checkpoint removed is still caught by the anchored count', async () => {
    const { dataDir, opts } = await anchored()
    const file = segmentName(1)
    writeSeg(dataDir, file, readSeg(dataDir, file).slice(0, 10))
    unlinkSync(join(journalDir(dataDir), 'head.json'))
    const r = await verifyJournal(opts)
    assert.equal(r.chain.ok, true)
    assert.equal(r.ok, false)
    assert.match(r.firstProblem ?? '', /pins seq 9\.\.12 \(4 entries.*the journal has 2 entries \(seq 9\.\.10\) in this range: 2 of the anchored seq 9\.\.12 are gone/)
  })

  test('anchors from another contract never count; with several reporters, --reporter picks ours', async () => {
    const { opts, periods, reader, other } = await anchored(4, 4)
    // A forged deployment the attacker controls, anchoring a root of their choice for the same period.
    const forged = await deployFlyTrap(fx.wallet(3))
    const attacker = new FlyTrapClient(forged.address, fx.wallet(3))
    await attacker.addReporter(fx.wallet(3).address, 'me')
    const p = periods[0]!
    await attacker.anchor({ ...link(p), root: '0x' + 'ab'.repeat(32) })
    // Another registered proxy anchors its own journal for the same period.
    await other.anchor({ fromTime: p.fromTime, toTime: p.toTime, firstSeq: 1, count: 9, root: '0x' + 'cd'.repeat(32), index: '0x' + 'cd'.repeat(32), prevChain: ZERO32, chain: '0x' + 'ef'.repeat(32) })

    const all = await fetchAnchors(reader, { fromBlock: opts.fromBlock })
    assert.ok(all.anchors.every((a) => a.root !== '0x' + 'ab'.repeat(32)), 'the forged contract\'s event is not read')
    const r = await verifyJournal(opts)
    assert.equal(r.ok, true, r.firstProblem ?? '')
    assert.deepEqual([r.anchors.reporters, r.anchors.otherReporters, r.anchors.periods[0]!.anchors.length], [[fx.wallet(1).address], 1, 1])
    const ours = await verifyJournal({ ...opts, reporter: fx.wallet(1).address })
    assert.deepEqual([ours.ok, ours.anchors.periods[0]!.anchors.length], [true, 1])
    const theirs = await verifyJournal({ ...opts, reporter: fx.wallet(2).address })
    assert.equal(theirs.ok, false)
    assert.match(theirs.firstProblem ?? '', /pins seq 1\.\.9 \(9 entries.*the journal has 4 entries \(seq 1\.\.4\)/)
  })

  test('a reporter removed later: its earlier anchors still count (it was registered when it anchored)', async () => {
    const { opts, admin } = await anchored(4, 4)
    const fresh = fx.wallet(4)
    await admin.addReporter(fresh.address, 'temporary')
    await admin.removeReporter(fresh.address, 'key rotated')
    const r = await verifyJournal(opts)
    assert.equal(r.ok, true)
    assert.equal(r.anchors.ignored, 0)
  })

  test('--from/--to select periods', async () => {
    const { opts, periods } = await anchored()
    const r = await verifyJournal({ ...opts, fromMs: periods[1]!.fromTime * 1000, toMs: periods[1]!.toTime * 1000 })
    assert.equal(r.ok, true)
    assert.deepEqual(r.anchors.periods.map((p) => p.fromTime), [periods[1]!.fromTime])
  })
})

describe('accountability against the operator (real chain): only the chain decides', () => {
  let fx: ChainFixture
  before(async () => {
    fx = await chainFixture({ deploy: false })
  })
  after(async () => fx?.close())

  async function deployment() {
    const d = await deployFlyTrap(fx.wallet(0))
    const admin = new FlyTrapClient(d.address, fx.wallet(0))
    await admin.addReporter(fx.wallet(1).address, 'proxy eu-1')
    await admin.addReporter(fx.wallet(2).address, 'proxy eu-2')
    return { admin, reporter: new FlyTrapClient(d.address, fx.wallet(1)), other: new FlyTrapClient(d.address, fx.wallet(2)), reader: new FlyTrapClient(d.address, fx.provider), fromBlock: d.block }
  }

  /** Three periods of four entries; the first `anchor` of them anchored by wallet 1. */
  async function journal(anchor: number, t0 = T0) {
    const dep = await deployment()
    const dataDir = tempData()
    const periods = await makeJournal(dataDir, 12, { perPeriod: 4, t0 })
    for (const p of periods.slice(0, anchor)) await dep.reporter.anchor(link(p))
    return { dataDir, periods, ...dep, opts: { dataDir, client: dep.reader, fromBlock: dep.fromBlock } }
  }

  /** The attacker appends an entry dated `t`, chained and checkpointed like a real one. */
  function appendForged(dataDir: string, t: number, input: EntryInput): void {
    const file = segFiles(dataDir).at(-1)!
    const lines = readSeg(dataDir, file)
    const last = parseRecord(lines.at(-1)!)
    const prev = chainNext(last.prev, last.leaf)
    const e = { seq: last.seq + 1, t, ...input } as Extract<JournalRecord, { redacted: false }>['entry']
    const salt = '0x' + '11'.repeat(32)
    const leaf = entryLeaf(salt, e)
    lines.push(encodeRecord({ redacted: false, seq: e.seq, t, entry: e, salt, leaf, prev }))
    writeSeg(dataDir, file, lines)
    const headFile = join(journalDir(dataDir), 'head.json')
    writeFileSync(headFile, JSON.stringify({ seq: e.seq, chain: chainNext(prev, leaf), t, segment: file }))
  }

  test('a missing anchor past the deadline fails (exit 7), not before it', async () => {
    const { opts, periods } = await journal(2)
    const now = await verifyJournal(opts)
    assert.equal(now.ok, true, now.firstProblem ?? '')
    assert.deepEqual(now.anchors.periods.map((p) => p.status), ['verified', 'verified', 'pending'])
    const later = await verifyJournal({ ...opts, now: periods[2]!.toTime * 1000 + 10 * 60_000 })
    assert.equal(later.ok, false)
    assert.deepEqual(later.anchors.periods.map((p) => p.status), ['verified', 'verified', 'unanchored', 'pending'])
    assert.equal(later.anchors.unanchored, 1)
    assert.match(later.firstProblem ?? '', /no anchor by 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 .* deadline: its 4 entries \(seq 9\.\.12\) are proven by nothing/)
  })

  test('forged meta.json reporter + a fake entry in a past unanchored period: exit 7, and meta.json decides nothing', async () => {
    const { dataDir, opts, periods } = await journal(2)
    appendForged(dataDir, periods[2]!.toTime * 1000 - 50, { kind: 'publish', outcome: 'allow', reason: 'member', address: ALICE, topic: 'plant/valve' })
    const metaFile = join(journalDir(dataDir), 'meta.json')
    writeFileSync(metaFile, JSON.stringify({ version: 1, periodMs: 2_000, reporter: fx.wallet(5).address }))
    const r = await verifyJournal({ ...opts, now: periods[2]!.toTime * 1000 + 10 * 60_000 })
    assert.equal(r.chain.ok, true, 'the fake entry is chained like a real one')
    assert.equal(r.ok, false)
    assert.deepEqual(r.anchors.reporters, [fx.wallet(1).address], 'the chain decides whose anchors are this journal\'s')
    assert.match(r.firstProblem ?? '', /no anchor .*: its 5 entries \(seq 9\.\.13\) are proven by nothing/)
    // meta.json cannot even stretch the deadline: a period length of a year there changes nothing.
    writeFileSync(metaFile, JSON.stringify({ version: 1, periodMs: 365 * 86_400_000 }))
    const again = await verifyJournal({ ...opts, now: periods[2]!.toTime * 1000 + 10 * 60_000 })
    assert.deepEqual([again.ok, again.anchors.deadlineMs], [false, 300_000])
  })

  test('the reporter key re-anchoring an anchored period with a forged root is refused on chain; genuine 0, forged 7', async () => {
    const { dataDir, opts, periods, reporter, other } = await journal(3)
    const forgedRoot = { ...link(periods[1]!), root: '0x' + 'ab'.repeat(32) }
    await assert.rejects(reporter.anchor(forgedRoot), /AnchorOverlap/)
    await assert.rejects(reporter.anchor({ ...link(periods[2]!), fromTime: periods[2]!.toTime, toTime: periods[2]!.toTime + 2 }), /AnchorWrongSeq/)
    const genuine = await verifyJournal(opts)
    assert.equal(genuine.ok, true, genuine.firstProblem ?? '')

    // The operator rewrites period 2 and has a second registered key anchor the forgery.
    rewriteAndRechain(dataDir, 6, (e) => {
      e.address = '0x0000000000000000000000000000000000000001'
    })
    const j = await openJournal({ dataDir, periodMs: 2_000 })
    const forged = await j.periodRoot(periods[1]!.fromTime / 2)
    await j.close()
    await other.anchor(link(forged))
    const r = await verifyJournal(opts)
    assert.equal(r.ok, false)
    const p2 = r.anchors.periods.find((p) => p.fromTime === periods[1]!.fromTime)!
    assert.equal(p2.status, 'conflict', 'two different roots for one range: fail closed')
    assert.match(r.firstProblem ?? '', /anchors of this range disagree \(1 match, 1 do not\)/)
  })

  test('a late anchor is named with its delay (exit 7 past the deadline, accepted with a wider one)', async () => {
    const t0 = T0 - 2 * 3_600_000
    const { opts, periods, reporter } = await journal(3, t0)
    const nowAligned = Math.floor(Date.now() / 2_000) * 2_000
    // The periods since then had no traffic: one folded empty link, sent on time.
    const last = periods[2]!
    await reporter.anchor({ fromTime: last.toTime, toTime: nowAligned / 1000 - 2, firstSeq: 13, count: 0, root: ZERO32, index: ZERO32, prevChain: last.chain!, chain: last.chain! })
    const r = await verifyJournal(opts)
    assert.equal(r.ok, false)
    const late = r.anchors.periods.filter((p) => p.status === 'late')
    assert.equal(late.length, 3)
    assert.ok(late.every((p) => p.delaySec! >= 7_000 && p.delaySec! < 8_000), late.map((p) => p.delaySec).join(','))
    assert.match(r.firstProblem ?? '', /anchored 2\.0 h after the period ended \(tx 0x[0-9a-f]{64}\), past the 5 min deadline/)
    assert.equal(r.anchors.periods.find((p) => p.local.count === 0 && p.anchors.length)?.status, 'verified', 'the empty link was on time')
    const wide = await verifyJournal({ ...opts, deadlineMs: 3 * 3_600_000 })
    assert.equal(wide.ok, true, wide.firstProblem ?? '')
  })

  test('registration is read from the chain at each anchor\'s block: a removed reporter cannot anchor; a successor continues', async () => {
    const { opts, periods, reporter, other, admin, reader, fromBlock } = await journal(2)
    const removed = await admin.removeReporter(fx.wallet(1).address, 'key rotated')
    await assert.rejects(reporter.anchor(link(periods[2]!)), /NotReporter/)
    const history = await loadReporterHistory(reader, { fromBlock })
    assert.equal(history.registeredAt(fx.wallet(1).address, [removed.blockNumber, 0]), true, 'registered just before its removal')
    assert.equal(history.registeredAt(fx.wallet(1).address, [removed.blockNumber + 1, 0]), false, 'not after it')
    assert.equal(history.registeredAt(fx.wallet(7).address, [removed.blockNumber, 0]), false, 'never registered')
    await other.anchor(link(periods[2]!)) // the successor key's first link may start where the old one ended
    const r = await verifyJournal(opts)
    assert.equal(r.ok, true, r.firstProblem ?? '')
    assert.deepEqual(r.anchors.reporters.sort(), [fx.wallet(1).address, fx.wallet(2).address].sort())
    const only = await verifyJournal({ ...opts, reporter: fx.wallet(2).address, now: periods[2]!.toTime * 1000 + 10 * 60_000 })
    assert.equal(only.ok, false, '--reporter narrows: the first two periods are then anchored by nobody')
  })

  test('a re-chained forgery that deleted one entry and renumbered the rest names the anchored seqs it changed', async () => {
    const { dataDir, opts } = await journal(3)
    // Delete seq 6, renumber 7..12 to 6..11 (their leaves recomputed: seq is in the content), re-chain, checkpoint.
    const file = segmentName(1)
    let chain = ZERO32
    const out: string[] = []
    for (const l of readSeg(dataDir, file)) {
      const r = parseRecord(l) as Extract<JournalRecord, { redacted: false }>
      if (r.seq === 6) continue
      if (r.seq > 6) {
        r.seq -= 1
        r.entry = { ...r.entry, seq: r.seq }
        r.leaf = entryLeaf(r.salt, r.entry)
      }
      r.prev = chain
      chain = chainNext(r.prev, r.leaf)
      out.push(encodeRecord(r))
    }
    writeSeg(dataDir, file, out)
    const headFile = join(journalDir(dataDir), 'head.json')
    writeFileSync(headFile, JSON.stringify({ ...JSON.parse(readFileSync(headFile, 'utf8')), seq: 11, chain }))
    const r = await verifyJournal(opts)
    assert.equal(r.chain.ok, true)
    assert.equal(r.ok, false)
    assert.match(r.firstProblem ?? '', /pins seq 5\.\.8 \(4 entries.*the journal has 3 entries \(seq 5\.\.7\) in this range: 1 of the anchored seq 5\.\.8 are gone/)
    assert.doesNotMatch(r.firstProblem ?? '', /after seq 7/)
    const p3 = r.anchors.periods.find((p) => p.anchors[0]?.firstSeq === 9)!
    assert.match(p3.message ?? '', /pins seq 9\.\.12 .*has 4 entries \(seq 8\.\.11\).*shifted by -1 \(this follows from the change at seq 5\.\.8/)
  })
})
