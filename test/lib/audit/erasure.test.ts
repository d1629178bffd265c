/**
 * A redaction is evidence, not a hole: `audit verify` accepts a redacted line only when the signed erasure
 * record it names lists it (seq, t, leaf) with the line's redactedAt. Hand-made redactions, edited times and
 * edited erasure records are failures naming the line and seq; an interrupted forget is completed by the next.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import type { EntryInput } from '../../../src/lib/audit/entry.js'
import { ErasureCheck, readErasure } from '../../../src/lib/audit/erasure.js'
import { forgetSubject } from '../../../src/lib/audit/forget.js'
import { openJournal } from '../../../src/lib/audit/journal.js'
import { journalDir, readRecords, segmentName } from '../../../src/lib/audit/journal-files.js'
import { verifyJournal } from '../../../src/lib/audit/verify.js'
import { ANVIL_DEV_KEYS } from '../../../src/lib/dev/anvil.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-erasure-')
const tempCopy = tempDirs('flytrap-erasure-copy-')

const ALICE = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'
const BOB = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65'
const REPORTER = new Wallet(ANVIL_DEV_KEYS[5]!)
const traffic = (i: number): EntryInput =>
  i % 2 === 0
    ? { kind: 'publish', outcome: 'allow', reason: 'member', address: ALICE, clientId: 'alice-1', ip: '203.0.113.7', topic: 'plant/valve' }
    : { kind: 'subscribe', outcome: 'deny', reason: 'not-member', address: BOB, clientId: 'bob', ip: '198.51.100.1', topic: 'plant/#' }

/** 6 entries (Alice: seq 1, 3, 5), Alice forgotten: the erasure record is seq 7 (in a segment of its own: it is days younger). */
async function forgotten(): Promise<{ dataDir: string; seg: string; lines: string[] }> {
  const dataDir = tempData()
  const c = { now: 1_700_000_000_000 }
  const j = await openJournal({ dataDir, periodMs: 2_000, now: () => c.now, flushIntervalMs: 1 })
  for (let i = 0; i < 6; i++) {
    await j.append(traffic(i))
    c.now += 500
  }
  await j.close()
  await forgetSubject({ dataDir, subject: ALICE, signer: REPORTER, basis: 'GDPR art. 17(1)(a)', requestedBy: 'data subject', now: () => 1_750_000_000_000 })
  const seg = join(journalDir(dataDir), segmentName(1))
  return { dataDir, seg, lines: readFileSync(seg, 'utf8').split('\n') }
}

const edit = (seg: string, lines: string[], i: number, f: (o: Record<string, unknown>) => void) => {
  const o = JSON.parse(lines[i]!) as Record<string, unknown>
  f(o)
  const copy = [...lines]
  copy[i] = JSON.stringify(o)
  writeFileSync(seg, copy.join('\n'))
}

describe('erasure records', () => {
  test('a genuine forget verifies; its erasure record is in the journal, signed by the reporter', async () => {
    const { dataDir } = await forgotten()
    const rep = await verifyJournal({ dataDir })
    assert.equal(rep.ok, true, rep.firstProblem ?? '')
    assert.equal(rep.journal.redacted, 3)
    const recs = []
    for await (const r of readRecords(dataDir)) recs.push(r.record)
    const e = recs.at(-1)!
    assert.ok(!e.redacted && e.entry.kind === 'erasure' && e.seq === 7)
    const body = readErasure(e.entry.erasure)
    assert.ok(body.ok && body.recovered === REPORTER.address)
    assert.deepEqual(body.body.redacts.map((x) => x[0]), [1, 3, 5])
    assert.doesNotMatch(readFileSync(join(journalDir(dataDir), segmentName(1)), 'utf8'), new RegExp(ALICE.slice(2), 'i'), 'the erasure record names the subject only by a salted commitment')
  })

  test('a line turned into a redaction by hand fails, naming the line and seq', async () => {
    const { dataDir, seg, lines } = await forgotten()
    assert.match(lines[1]!, /"seq":2,.*"address":"0x15d3/) // Bob's refused subscribe
    const bob = JSON.parse(lines[1]!) as { seq: number; t: number; leaf: string; prev: string }
    const hand = (extra: Record<string, unknown>) => {
      const copy = [...lines]
      copy[1] = JSON.stringify({ seq: bob.seq, t: bob.t, redacted: true, redactedAt: 1_750_000_000_000, ...extra, leaf: bob.leaf, prev: bob.prev })
      writeFileSync(seg, copy.join('\n'))
    }
    hand({})
    let rep = await verifyJournal({ dataDir })
    assert.equal(rep.ok, false)
    assert.deepEqual(rep.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [['redaction', segmentName(1), 2, 2]])
    assert.match(rep.firstProblem!, /seg-0000000000000001\.jsonl:2: redacted entry seq 2 names no erasure record/)

    hand({ erasure: 7 }) // naming the genuine erasure record does not help: it does not list seq 2
    rep = await verifyJournal({ dataDir })
    assert.match(rep.firstProblem!, /:2: redacted entry seq 2 is not listed by erasure record seq 7/)
    hand({ erasure: 6 })
    rep = await verifyJournal({ dataDir })
    assert.match(rep.firstProblem!, /:2: redacted entry seq 2 names erasure record seq 6, which is not in the journal as a full erasure entry/)
  })

  test("a genuine redaction's t or redactedAt edited fails", async () => {
    const { dataDir, seg, lines } = await forgotten()
    assert.match(lines[2]!, /"seq":3,"t":1700000001000,"redacted":true/)
    edit(seg, lines, 2, (o) => (o.t = 1_700_000_000_900))
    let rep = await verifyJournal({ dataDir })
    assert.equal(rep.ok, false)
    assert.match(rep.firstProblem!, /:3: redacted entry seq 3 has t 1700000000900, but erasure record seq 7 signed t 1700000001000: its time was edited/)

    edit(seg, lines, 2, (o) => (o.redactedAt = 1_760_000_000_000))
    rep = await verifyJournal({ dataDir })
    assert.equal(rep.ok, false)
    assert.match(rep.firstProblem!, /:3: redacted entry seq 3 has redactedAt 1760000000000, but erasure record seq 7 signed 1750000000000/)

    edit(seg, lines, 2, (o) => delete o.erasure)
    assert.match((await verifyJournal({ dataDir })).firstProblem!, /:3: redacted entry seq 3 names no erasure record/)
  })

  test('an edited erasure record (to cover one more line) fails, however it is re-signed', async () => {
    const { dataDir } = await forgotten()
    const seg = join(journalDir(dataDir), segmentName(7))
    const lines = readFileSync(seg, 'utf8').split('\n')
    assert.match(lines[0]!, /"seq":7,.*"kind":"erasure"/)
    edit(seg, lines, 0, (o) => ((o.erasure as { basis: string }).basis = 'operator convenience'))
    const rep = await verifyJournal({ dataDir })
    assert.equal(rep.ok, false)
    assert.ok(rep.chain.problems.some((p) => p.kind === 'content-altered' && p.seq === 7))
    assert.ok(rep.chain.problems.some((p) => p.kind === 'redaction' && p.seq === 3 && /erasure record seq 7 .* is not valid/.test(p.message)))
  })

  test('the signer must be a trusted reporter (the set verify passes in)', async () => {
    const { dataDir } = await forgotten()
    const run = async (trusted: string[] | null) => {
      const check = new ErasureCheck({ trusted })
      for await (const { file, line, record } of readRecords(dataDir)) {
        if (record.redacted) check.redaction(record, file, line)
        else check.entry(record, file, line)
      }
      return check.finish()
    }
    assert.deepEqual((await run([REPORTER.address])).problems, [])
    const other = await run([new Wallet(ANVIL_DEV_KEYS[6]!).address])
    assert.equal(other.problems.length, 4, 'the record itself and its three lines')
    assert.match(other.problems[0]!.message, new RegExp(`erasure record seq 7 is not valid: it is signed by ${REPORTER.address}, which is not a reporter this verification trusts`))
    const none = await run(null)
    assert.deepEqual(none.problems, [])
    assert.match(none.warnings[0]!, /not checked against the contract's reporters/)
  })

  test('a forget interrupted after its erasure record was written is completed by the next run', async () => {
    const dataDir = tempData()
    const c = { now: 1_700_000_000_000 }
    const j = await openJournal({ dataDir, periodMs: 2_000, now: () => c.now, flushIntervalMs: 1 })
    for (let i = 0; i < 6; i++) {
      await j.append(traffic(i))
      c.now += 500
    }
    await j.close()
    const seg = join(journalDir(dataDir), segmentName(1))
    const before = join(tempCopy(), 'seg')
    copyFileSync(seg, before)
    const first = await forgetSubject({ dataDir, subject: ALICE, signer: REPORTER, basis: 'GDPR art. 17', requestedBy: 'DPO' })
    // The crash: the erasure record reached the journal, the rewrite of the segment did not.
    copyFileSync(before, seg)
    const mid = await verifyJournal({ dataDir })
    assert.equal(mid.ok, true, mid.firstProblem ?? '')
    assert.equal(mid.journal.redacted, 0)

    const second = await forgetSubject({ dataDir, subject: ALICE, signer: REPORTER, basis: 'GDPR art. 17', requestedBy: 'DPO' })
    assert.deepEqual([second.redacted, second.journals[0]!.erasureSeq, second.journals[0]!.completed], [3, null, [first.journals[0]!.erasureSeq]])
    const done = await verifyJournal({ dataDir })
    assert.equal(done.ok, true, done.firstProblem ?? '')
    assert.equal(done.journal.redacted, 3)
  })
})
