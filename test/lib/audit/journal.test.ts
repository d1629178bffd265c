/**
 * The journal on disk: group-committed appends, the hash chain, rotation, torn-write recovery, epoch-aligned
 * periods across restarts, and the kill -9 test (a child process appends under load and is killed; every
 * entry it was told is on disk must be there after a restart, and the chain must verify).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chainNext, entryLeaf, GENESIS, parseRecord, type EntryInput } from '../../../src/lib/audit/entry.js'
import { JOURNAL_DEFAULTS, openJournal, type JournalOptions } from '../../../src/lib/audit/journal.js'
import { journalDir, listSegments, periodBounds, readRecords, segmentName } from '../../../src/lib/audit/journal-files.js'
import { merkleRoot, verifyProof } from '../../../src/lib/audit/merkle.js'
import { verifyJournal } from '../../../src/lib/audit/verify.js'
import { FlytrapError } from '../../../src/lib/errors.js'
import { recordingLogger } from '../../helpers/logger.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-journal-')

const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const pub = (i: number): EntryInput => ({ kind: 'publish', outcome: i % 3 === 0 ? 'deny' : 'allow', reason: i % 3 === 0 ? 'not-member' : 'member', address: ALICE, clientId: `dev-${i}`, ip: '198.51.100.7', topic: `sensors/${i}` })

function clock(start: number) {
  const c = { now: start, fn: () => c.now }
  return c
}

function segmentLines(dataDir: string): { file: string; lines: string[] }[] {
  const dir = journalDir(dataDir)
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .map((file) => ({ file, lines: readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean) }))
}

async function allRecords(dataDir: string) {
  const out = []
  for await (const r of readRecords(dataDir)) out.push(r.record)
  return out
}

async function withJournal(opts: Partial<JournalOptions> & { dataDir: string }, n: number, input = pub) {
  const j = await openJournal({ flushIntervalMs: 5, ...opts })
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => j.append(input(i))))
  await j.close()
  return acks
}

describe('appending', () => {
  test('an append resolves only once its entry is on disk, with consecutive seqs and the hash chain', async () => {
    const dataDir = tempData()
    const j = await openJournal({ dataDir, flushIntervalMs: 20 })
    const p = j.append(pub(0))
    assert.equal(j.pendingCount, 1, 'queued, not written, when append returns')
    assert.equal(segmentLines(dataDir).length, 0)
    const a = await p
    assert.equal(a.seq, 1)
    const [seg] = segmentLines(dataDir)
    assert.equal(seg?.file, segmentName(1))
    assert.equal(seg?.lines.length, 1, 'on disk when the promise resolved')

    const more = await Promise.all(Array.from({ length: 99 }, (_, i) => j.append(pub(i + 1))))
    assert.deepEqual(more.map((x) => x.seq), Array.from({ length: 99 }, (_, i) => i + 2))
    assert.ok(j.stats().batches < 10, `group commit: ${j.stats().batches} batches for 100 entries`)
    await j.close()

    let chain = GENESIS
    const records = segmentLines(dataDir)[0]!.lines.map((l) => parseRecord(l))
    records.forEach((r, i) => {
      assert.equal(r.seq, i + 1)
      assert.equal(r.redacted, false)
      if (r.redacted) return
      assert.equal(r.prev, chain, `prev of seq ${r.seq}`)
      assert.equal(entryLeaf(r.salt, r.entry), r.leaf)
      chain = chainNext(chain, r.leaf)
    })
    assert.equal(new Set(records.map((r) => (r.redacted ? '' : r.salt))).size, 100, 'a fresh salt per entry')
  })

  test('only the entry fields are stored: no payloads, nothing the leaf does not cover', async () => {
    const dataDir = tempData()
    await withJournal({ dataDir }, 1, () => ({ ...pub(1), payload: 'secret reading', password: 'x' }) as unknown as EntryInput)
    const line = segmentLines(dataDir)[0]!.lines[0]!
    assert.doesNotMatch(line, /secret|password|payload/)
    assert.deepEqual(Object.keys(JSON.parse(line)), ['seq', 't', 'kind', 'outcome', 'reason', 'address', 'clientId', 'ip', 'topic', 'salt', 'leaf', 'prev'])
  })

  test('times never go backwards, whatever the clock does', async () => {
    const dataDir = tempData()
    const c = clock(50_000)
    const j = await openJournal({ dataDir, now: c.fn, flushIntervalMs: 1 })
    const a = await j.append(pub(0))
    c.now = 40_000
    const b = await j.append(pub(1))
    await j.close()
    assert.equal(a.t, 50_000)
    assert.equal(b.t, 50_000)
  })

  test('a backlog beyond maxPending is refused (counted by the recorder as dropped), not buffered without bound', async () => {
    const dataDir = tempData()
    const j = await openJournal({ dataDir, maxPending: 3, flushIntervalMs: 1_000 })
    const ok = [j.append(pub(0)), j.append(pub(1)), j.append(pub(2))]
    await assert.rejects(j.append(pub(3)), (err: FlytrapError) => err.code === 'JOURNAL_BACKLOG')
    await j.close()
    assert.deepEqual((await Promise.all(ok)).map((a) => a.seq), [1, 2, 3])
    await assert.rejects(j.append(pub(4)), /closed/)
  })

  test('one writer: a second open is refused while the first holds the lock; a dead holder\'s lock is taken over', async () => {
    const dataDir = tempData()
    const j = await openJournal({ dataDir })
    await assert.rejects(openJournal({ dataDir }), (err: FlytrapError) => err.exit === 3 && /already open/.test(err.message))
    await j.close()
    writeFileSync(join(journalDir(dataDir), 'LOCK'), '999999999\n') // no such process
    const k = await openJournal({ dataDir })
    await k.close()
  })
})

describe('rotation', () => {
  test('by size: segments named by first seq, sorted, each starting where the previous ended, chain continuous', async () => {
    const dataDir = tempData()
    await withJournal({ dataDir, maxSegmentBytes: 2_000, maxBatch: 2 }, 40)
    const segs = await listSegments(dataDir)
    assert.ok(segs.length >= 5, `${segs.length} segments`)
    const files = segmentLines(dataDir)
    assert.deepEqual(files.map((f) => f.file), segs.map((s) => s.name))
    let expect = 1
    for (const f of files) {
      assert.equal(f.file, segmentName(expect))
      assert.equal(parseRecord(f.lines[0]!).seq, expect)
      expect += f.lines.length
    }
    assert.equal(expect, 41)
    const report = await verifyJournal({ dataDir })
    assert.equal(report.chain.ok, true, JSON.stringify(report.chain.problems))
    assert.equal(report.journal.entries, 40)
  })

  test('by age, measured from the first entry of the segment', async () => {
    const dataDir = tempData()
    const c = clock(1_000_000)
    const j = await openJournal({ dataDir, now: c.fn, maxSegmentAgeMs: 1_000, flushIntervalMs: 1 })
    for (let i = 0; i < 6; i++) {
      await j.append(pub(i))
      c.now += 600
    }
    await j.close()
    // t: 0, 600 | 1200, 1800 | 2400, 3000 (relative): a new segment once an entry is ≥ 1 s after the segment's first
    assert.deepEqual((await listSegments(dataDir)).map((s) => s.firstSeq), [1, 3, 5])
    assert.equal((await verifyJournal({ dataDir })).chain.ok, true)
  })

  test('defaults are 64 MiB / 1 day, 30-minute periods and group commit without a fixed wait', () => {
    assert.equal(JOURNAL_DEFAULTS.maxSegmentBytes, 64 * 1024 * 1024)
    assert.equal(JOURNAL_DEFAULTS.maxSegmentAgeMs, 86_400_000)
    assert.equal(JOURNAL_DEFAULTS.periodMs, 1_800_000)
    assert.equal(JOURNAL_DEFAULTS.flushIntervalMs, 0)
  })

  test('group commit: an idle journal writes right after the current turn; what arrives during a write goes into the next one', async () => {
    const dataDir = tempData()
    const j = await openJournal({ dataDir })
    const first = Array.from({ length: 10 }, (_, i) => j.append(pub(i)))
    await new Promise((r) => setImmediate(r))
    assert.equal(j.pendingCount, 0, 'the write started after this turn, without a timer')
    assert.ok(j.lagMs() >= 0)
    const second = Array.from({ length: 50 }, (_, i) => j.append(pub(100 + i)))
    await Promise.all([...first, ...second])
    assert.equal(j.stats().batches, 2, 'one write + fdatasync for the first ten, one for everything appended meanwhile')
    assert.equal(j.lagMs(), 0)
    await j.close()
  })

  test('merging: identical decisions of one batch and one period become one entry dated by the first; never across batches or periods', async () => {
    const dataDir = tempData()
    const c = clock(60_000 - 3)
    const j = await openJournal({ dataDir, now: c.fn, periodMs: 60_000 })
    const same = { kind: 'publish' as const, outcome: 'allow' as const, reason: 'member', address: ALICE, topic: 'plant/valve' }
    const acks = []
    for (let i = 0; i < 5; i++) {
      acks.push(j.append(same, { merge: 'k' }))
      c.now++ // 59 997 … 60 001: the last two in the next period
    }
    acks.push(j.append(pub(1)))
    const all = await Promise.all(acks)
    acks.length = 0
    acks.push(j.append(same, { merge: 'k' })) // a later batch: an entry of its own
    all.push(...(await Promise.all(acks)))
    await j.close()
    const entries = (await allRecords(dataDir)).map((r) => (r.redacted ? null : r.entry))
    assert.deepEqual(
      entries.map((e) => [e?.kind, e?.t, e?.count]),
      [
        ['publish', 59_997, 3],
        ['publish', 60_000, 2],
        ['publish', 60_002, undefined],
        ['publish', 60_002, undefined],
      ],
    )
    assert.deepEqual(all.map((a) => a.seq), [1, 1, 1, 2, 2, 3, 4], 'each merged decision resolves with its entry')
    const again = await openJournal({ dataDir, periodMs: 60_000 })
    assert.equal((await again.periodTally(0)).decisions, 3, 'counted from disk after a restart')
    await again.close()
  })
})

describe('torn writes', () => {
  for (const [name, tail] of [
    ['half a line', '{"seq":6,"t":17000000'],
    ['zero-filled blocks', '\0'.repeat(4096)],
    ['a complete line that is not a record, then half of one', 'garbage\n{"seq":'],
  ] as const) {
    test(`a torn tail (${name}) is cut off on open, kept aside and logged; the chain continues`, async () => {
      const dataDir = tempData()
      await withJournal({ dataDir }, 5)
      const file = join(journalDir(dataDir), segmentName(1))
      const intact = readFileSync(file)
      appendFileSync(file, tail)
      const log = recordingLogger()
      const j = await openJournal({ dataDir, logger: log })
      assert.deepEqual(readFileSync(file), intact, 'truncated back to the last complete entry')
      const warn = log.lines.find((l) => l.level === 'warn')
      assert.match(warn?.msg ?? '', /torn/)
      const aside = readdirSync(journalDir(dataDir)).filter((n) => n.includes('.torn-'))
      assert.equal(aside.length, 1)
      assert.equal(readFileSync(join(journalDir(dataDir), aside[0]!), 'latin1'), tail)
      assert.equal((await j.append(pub(9))).seq, 6)
      await j.close()
      const report = await verifyJournal({ dataDir })
      assert.equal(report.ok, true, report.firstProblem ?? '')
      assert.match(report.warnings.join('\n'), /torn write/)
    })
  }

  test('damage followed by intact lines is not a torn write: the journal refuses to open', async () => {
    const dataDir = tempData()
    await withJournal({ dataDir }, 5)
    const file = join(journalDir(dataDir), segmentName(1))
    const lines = readFileSync(file, 'utf8').split('\n')
    lines[2] = lines[2]!.replace('"outcome":"deny"', '"outcome":"allow"').replace('"outcome":"allow","reason":"member"', '"outcome":"deny","reason":"member"')
    writeFileSync(file, lines.join('\n'))
    await assert.rejects(openJournal({ dataDir }), (err: FlytrapError) => err.exit === 7 && /line 3/.test(err.message) && /not a torn write/.test(err.message))
  })

  test('a journal shorter than its clean-close checkpoint refuses to open', async () => {
    const dataDir = tempData()
    await withJournal({ dataDir }, 5)
    const file = join(journalDir(dataDir), segmentName(1))
    writeFileSync(file, readFileSync(file, 'utf8').split('\n').slice(0, 3).join('\n') + '\n')
    await assert.rejects(openJournal({ dataDir }), (err: FlytrapError) => err.exit === 7 && /ends at seq 3.*closed cleanly at seq 5/.test(err.message))
  })
})

describe('periods', () => {
  test('epoch-aligned periods with exact boundaries survive a restart; roots are the Merkle roots of their leaves', async () => {
    const dataDir = tempData()
    const P = 2_000
    const c = clock(10_000) // period 5 = [10 s, 12 s)
    let j = await openJournal({ dataDir, periodMs: P, now: c.fn, flushIntervalMs: 1 })
    await j.append(pub(1))
    c.now = 11_999
    await j.append(pub(2)) // last millisecond of period 5
    c.now = 12_000
    await j.append(pub(3)) // first of period 6
    await j.close()

    c.now = 13_000 // restart in the middle of period 6
    j = await openJournal({ dataDir, periodMs: P, now: c.fn, flushIntervalMs: 1 })
    await j.append(pub(4))
    c.now = 14_000
    await j.append(pub(5)) // period 7
    const records = await allRecords(dataDir)
    const leavesOf = (k: number) => records.filter((r) => Math.floor(r.t / P) === k).map((r) => r.leaf)

    const p5 = await j.periodRoot(5)
    const p6 = await j.periodRoot(6)
    const p7 = await j.periodRoot(7)
    assert.deepEqual({ ...p5, root: undefined, chain: undefined }, { period: 5, root: undefined, count: 2, fromTime: 10, toTime: 12, firstSeq: 1, lastSeq: 2, prevChain: '0x' + '0'.repeat(64), chain: undefined, closed: true })
    // The chain values an anchor pins: before the period's first entry and after its last.
    assert.equal(p5.chain, chainNext(chainNext(GENESIS, records[0]!.leaf), records[1]!.leaf))
    assert.deepEqual([p6.prevChain, p7.prevChain], [p5.chain, p6.chain], 'each period starts where the one before ended (across the restart)')
    assert.deepEqual([p6.count, p6.firstSeq, p6.lastSeq, p6.fromTime, p6.toTime], [2, 3, 4, 12, 14], 'period 6 spans the restart')
    assert.deepEqual([p7.count, p7.firstSeq, p7.closed], [1, 5, false])
    assert.equal(p5.root, merkleRoot(leavesOf(5)))
    assert.equal(p6.root, merkleRoot(leavesOf(6)))
    assert.equal(p7.root, merkleRoot(leavesOf(7)))
    assert.deepEqual(await j.periodRoot(4), { period: 4, root: '0x' + '0'.repeat(64), count: 0, fromTime: 8, toTime: 10, firstSeq: null, lastSeq: null, prevChain: null, chain: null, closed: true })

    // In memory (period 7, appended in this run) and from disk (after another restart) agree.
    c.now = 16_500
    await j.append(pub(6))
    const live7 = await j.periodRoot(7)
    await j.close()
    j = await openJournal({ dataDir, periodMs: P, now: c.fn })
    assert.deepEqual(await j.periodRoot(7), live7)

    for (const seq of [1, 2, 3, 4, 5]) {
      const proof = await j.proof(seq)
      assert.ok(proof, `proof for ${seq}`)
      const k = Math.floor(records[seq - 1]!.t / P)
      assert.deepEqual([proof.fromTime, proof.toTime], [periodBounds(k, P).fromTime, periodBounds(k, P).toTime])
      assert.equal(verifyProof(proof.leaf, proof, (await j.periodRoot(k)).root), true)
    }
    assert.equal(await j.proof(99), null)
    await j.close()
  })

  test('the period must be whole seconds', async () => {
    await assert.rejects(openJournal({ dataDir: tempData(), periodMs: 1_500 }), /whole number of seconds/)
  })
})

describe('kill -9 under load', () => {
  const moduleUrl = new URL('../../../src/lib/audit/journal.ts', import.meta.url).href
  // The child appends continuously with ~500 entries in flight and reports each acknowledgement (resolved
  // promise) on stdout, batched per turn of the event loop.
  const child = `
    const { openJournal } = await import(${JSON.stringify(moduleUrl)})
    const j = await openJournal({ dataDir: process.env.DATA_DIR, flushIntervalMs: 5, maxBatch: 256, maxSegmentBytes: 96 * 1024 })
    let queued = 0, acked = 0, out = [], scheduled = false
    const report = () => { scheduled = false; process.stdout.write(out.join('')); out = [] }
    const pump = () => {
      while (queued - acked < 500) {
        queued++
        j.append({ kind: 'publish', outcome: 'allow', reason: 'member', address: '${ALICE}', ip: '10.0.0.1', topic: 'load/' + queued }).then((a) => {
          acked++
          out.push(a.seq + ' ' + queued + '\\n')
          if (!scheduled) { scheduled = true; setImmediate(report) }
        })
      }
      setImmediate(pump)
    }
    pump()
  `

  for (const killAfter of [1_500, 4_000, 7_000]) {
    test(`killed after ${killAfter} acknowledgements: every acknowledged entry is there after a restart and the chain verifies`, async () => {
      const dataDir = tempData()
      const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { env: { ...process.env, DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
      const acked = new Set<number>()
      let maxQueued = 0
      let buf = ''
      const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)))
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child did not reach ${killAfter} acks: ${stderr}`)), 60_000)
        proc.stdout.on('data', (c: Buffer) => {
          buf += c.toString()
          const lines = buf.split('\n')
          buf = lines.pop()!
          for (const l of lines) {
            const [seq, queued] = l.split(' ').map(Number) as [number, number]
            acked.add(seq)
            maxQueued = Math.max(maxQueued, queued)
          }
          if (acked.size >= killAfter && proc.exitCode === null && !proc.killed) {
            proc.kill('SIGKILL')
            clearTimeout(timer)
            resolve()
          }
        })
        proc.on('exit', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      assert.equal(await exited, 'SIGKILL', stderr)
      assert.ok(maxQueued > Math.max(...acked), `entries were in flight when killed (queued ${maxQueued}, acked up to ${Math.max(...acked)})`)

      const j = await openJournal({ dataDir }) // recovers the tail the kill left
      const last = j.lastSeq
      await j.append(pub(0))
      await j.close()
      const seqs = (await allRecords(dataDir)).map((r) => r.seq)
      assert.deepEqual(seqs, Array.from({ length: last + 1 }, (_, i) => i + 1), 'no gaps')
      const missing = [...acked].filter((s) => s > last)
      assert.deepEqual(missing, [], 'every acknowledged seq survived')
      const report = await verifyJournal({ dataDir })
      assert.equal(report.chain.ok, true, report.firstProblem ?? '')
      assert.ok((await listSegments(dataDir)).length > 1, 'rotated while loaded')
    })
  }
})
