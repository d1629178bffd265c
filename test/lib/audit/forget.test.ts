/**
 * `forgetSubject`: GDPR erasure on a tamper-evident journal. The subject disappears from every file, while
 * every period root (the anchored values) and every inclusion proof stay valid.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, readdirSync, readFileSync, writeFileSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { parseRecord, type EntryInput } from '../../../src/lib/audit/entry.js'
import { commitSubject, readErasure } from '../../../src/lib/audit/erasure.js'
import { forgetSubject as forget, type ForgetOptions } from '../../../src/lib/audit/forget.js'
import { ANVIL_DEV_KEYS } from '../../../src/lib/dev/anvil.js'
import { openJournal } from '../../../src/lib/audit/journal.js'
import { journalDir, periodIndex, rangeIndex, rangeRoots, readIndexRows, readRecords, segmentName, type EntryProof } from '../../../src/lib/audit/journal-files.js'
import { keyHash } from '../../../src/lib/audit/scope-index.js'
import { verifyProof } from '../../../src/lib/audit/merkle.js'
import { verifyJournal } from '../../../src/lib/audit/verify.js'
import type { FlytrapError } from '../../../src/lib/errors.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-forget-')

const ALICE = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const BOB = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
const ALICE_IP = '203.0.113.7'
const P = 2_000
const REPORTER = new Wallet(ANVIL_DEV_KEYS[5]!)
const forgetSubject = (o: Omit<ForgetOptions, 'signer' | 'basis' | 'requestedBy'> & Partial<ForgetOptions>) =>
  forget({ signer: REPORTER, basis: 'GDPR art. 17(1)(b)', requestedBy: 'data subject, ticket 4711', ...o })

/** 30 entries over 3 periods: Alice's, Bob's, and Bob's on a topic that names Alice. */
const traffic = (i: number): EntryInput => {
  if (i % 3 === 0) return { kind: 'publish', outcome: 'allow', reason: 'member', address: ALICE, clientId: 'alice-phone', ip: ALICE_IP, topic: 'home/temp' }
  if (i % 3 === 1) return { kind: 'subscribe', outcome: 'deny', reason: 'not-member', address: BOB, clientId: 'bob', ip: '198.51.100.1', topic: 'home/#' }
  return { kind: 'deliver', outcome: 'allow', reason: 'member', address: BOB, clientId: 'bob', ip: '198.51.100.1', topic: `inbox/${ALICE.toLowerCase()}` }
}

async function journal(dataDir: string, n = 30) {
  const c = { now: 1_700_000_000_000 }
  const j = await openJournal({ dataDir, periodMs: P, now: () => c.now, flushIntervalMs: 1, maxSegmentBytes: 3_000 })
  for (let i = 0; i < n; i++) {
    await j.append(traffic(i))
    c.now += 250
  }
  const first = j.periodOf(1_700_000_000_000)
  const roots = []
  for (let k = first; k <= j.periodOf(c.now); k++) roots.push(await j.periodRoot(k))
  const proofs: EntryProof[] = []
  for (let seq = 1; seq <= n; seq++) proofs.push((await j.proof(seq))!)
  await j.close()
  return { roots, proofs }
}

/** Every file under the journal directory (the scope indexes in journal/index/ included). */
function journalText(dataDir: string): string {
  const dir = journalDir(dataDir)
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((d) => d.isFile())
    .map((d) => readFileSync(join(d.parentPath, d.name), 'latin1'))
    .join('\n')
}

describe('audit forget', () => {
  test('redacts every entry mentioning the address; roots, proofs and the chain still verify', async () => {
    const dataDir = tempData()
    const { roots, proofs } = await journal(dataDir)
    const ranges = roots.map((r) => ({ fromMs: r.fromTime * 1000, toMs: r.toTime * 1000 }))
    const provenBefore = await rangeRoots(dataDir, ranges, { leaf: 'proven' })
    const indexBefore = await Promise.all(roots.map((r) => rangeIndex(dataDir, r)))
    assert.match(journalText(dataDir), new RegExp(ALICE, 'i'))

    const res = await forgetSubject({ dataDir, subject: ALICE.toLowerCase(), now: () => 1_900_000_000_000 })
    assert.equal(res.redacted, 20, "Alice's 10 entries and Bob's 10 deliveries on a topic naming her")
    assert.ok(res.journals[0]!.segments.length > 1)
    assert.doesNotMatch(journalText(dataDir), new RegExp(ALICE.slice(2), 'i'), 'the address is nowhere in the journal directory')
    assert.doesNotMatch(journalText(dataDir), /alice-phone|203\.0\.113\.7/, 'nor her client id or IP')

    const records = []
    for await (const r of readRecords(dataDir)) records.push(r.record)
    assert.equal(records.length, 31, 'the 30 entries and the erasure record')
    for (const r of records.slice(0, 30)) {
      if (r.seq % 3 === 2) {
        assert.equal(r.redacted, false, "Bob's subscribe stays")
        continue
      }
      assert.equal(r.redacted, true, `seq ${r.seq}`)
    }
    const line = readFileSync(join(journalDir(dataDir), segmentName(1)), 'utf8').split('\n')[0]!
    assert.deepEqual(Object.keys(JSON.parse(line)), ['seq', 't', 'redacted', 'redactedAt', 'erasure', 'leaf', 'prev'], 'no salt, no personal field; the erasure record named')
    assert.equal(JSON.parse(line).redactedAt, 1_900_000_000_000)
    assert.equal(JSON.parse(line).erasure, 31, 'the erasure record is the entry appended after the 30')

    // The erasure record: in the journal, signed by the reporter, listing every seq redacted with its t and leaf.
    const all = []
    for await (const r of readRecords(dataDir)) all.push(r.record)
    const er = all.find((r) => r.seq === 31)!
    assert.ok(!er.redacted && er.entry.kind === 'erasure')
    const body = readErasure(er.entry.erasure)
    assert.ok(body.ok, body.ok ? '' : body.why)
    assert.equal(body.recovered, REPORTER.address)
    assert.deepEqual([body.body.at, body.body.basis, body.body.requestedBy], [1_900_000_000_000, 'GDPR art. 17(1)(b)', 'data subject, ticket 4711'])
    const redactedNow = all.filter((r) => r.redacted)
    assert.deepEqual(body.body.redacts, redactedNow.map((r) => [r.seq, r.t, r.leaf]))
    assert.equal(body.body.subject, commitSubject(ALICE, res.commitment!.salt).commitment, 'a commitment the salt opens')
    assert.equal(res.journals[0]!.erasureSeq, 31)

    // The anchored values are unchanged: the same roots from the stored and from the recomputed leaves.
    assert.deepEqual((await rangeRoots(dataDir, ranges, { leaf: 'proven' })).map((r) => [r.root, r.count]), provenBefore.map((r) => [r.root, r.count]))
    assert.deepEqual(provenBefore.map((r) => r.root), roots.map((r) => r.root))
    for (const p of proofs) {
      const root = roots.find((r) => r.fromTime === p.fromTime)!.root
      assert.equal(verifyProof(p.leaf, p, root), true, `the proof of seq ${p.seq} made before the redaction`)
    }
    const j = await openJournal({ dataDir, periodMs: P })
    for (const p of proofs) assert.equal(verifyProof((await j.proof(p.seq))!.leaf, p, p.root), true, `a proof made after it (seq ${p.seq})`)
    for (const r of roots) assert.equal((await j.periodRoot(r.period)).root, r.root)
    await j.close()

    // The scope indexes: stored for every period she was in, before the redaction; her keys (her client
    // key, the topic naming her and its subtree keys) cut to hashes; the roots an anchor commits to unchanged.
    const aliceKeys = [`client:${ALICE.toLowerCase()}`, `topic:inbox/${ALICE.toLowerCase()}`].map(keyHash)
    for (const [i, r] of roots.entries()) {
      const stored = (await readIndexRows(dataDir, r)) as { keyHash: string; key?: string; seqs?: number[] }[] | null
      assert.ok(stored, `the index of period ${r.period} is stored`)
      assert.equal((await periodIndex(dataDir, r)).root, indexBefore[i]!.root, 'the index root is unchanged')
      assert.ok(stored.some((x) => x.keyHash === aliceKeys[0] && x.key === undefined), 'her client row is kept as hashes')
      for (const row of stored.filter((x) => aliceKeys.includes(x.keyHash))) assert.deepEqual(Object.keys(row), ['keyHash', 'seqsDigest'])
      assert.ok(stored.some((x) => x.key === `client:${BOB.toLowerCase()}`), "Bob's rows stay in clear")
      assert.ok(stored.every((x) => x.key === undefined || !x.key.toLowerCase().includes(ALICE.slice(2).toLowerCase())))
    }

    const report = await verifyJournal({ dataDir })
    assert.equal(report.ok, true, report.firstProblem ?? '')
    assert.equal(report.journal.redacted, 20)

    const again = await forgetSubject({ dataDir, subject: ALICE })
    assert.deepEqual([again.redacted, again.journals[0]!.erasureSeq], [0, null], 'idempotent: no second erasure record')
  })

  test('by IP address, as a whole token only', async () => {
    const dataDir = tempData()
    await journal(dataDir, 6)
    assert.equal((await forgetSubject({ dataDir, subject: '203.0.113.70' })).redacted, 0)
    assert.equal((await forgetSubject({ dataDir, subject: ALICE_IP })).redacted, 2)
    assert.doesNotMatch(journalText(dataDir), /203\.0\.113\.7\b/)
    assert.equal((await verifyJournal({ dataDir })).ok, true)
  })

  test('the subject is blanked out of a torn tail and of torn bytes kept aside', async () => {
    const dataDir = tempData()
    await journal(dataDir, 3)
    const seg = join(journalDir(dataDir), segmentName(1))
    appendFileSync(seg, `{"seq":4,"t":1,"kind":"connect","address":"${ALICE}"`)
    const j = await openJournal({ dataDir, periodMs: P }) // moves the torn tail aside
    await j.close()
    appendFileSync(seg, `{"seq":4,"address":"${ALICE}`) // and another one, still in place
    await forgetSubject({ dataDir, subject: ALICE })
    assert.doesNotMatch(journalText(dataDir), new RegExp(ALICE.slice(2), 'i'))
  })

  test('refuses while the proxy holds the journal, refuses to launder a tampered entry, refuses a non-address', async () => {
    const dataDir = tempData()
    await journal(dataDir, 6)
    const j = await openJournal({ dataDir, periodMs: P })
    await assert.rejects(forgetSubject({ dataDir, subject: ALICE }), (err: FlytrapError) => err.exit === 3)
    await j.close()

    const seg = join(journalDir(dataDir), segmentName(1))
    const lines = readFileSync(seg, 'utf8').split('\n')
    const rec = parseRecord(lines[3]!)
    assert.equal(rec.redacted, false)
    lines[3] = lines[3]!.replace('"outcome":"allow"', '"outcome":"deny"')
    writeFileSync(seg, lines.join('\n'))
    await assert.rejects(forgetSubject({ dataDir, subject: ALICE }), (err: FlytrapError) => err.exit === 7 && /seq 4 no longer matches its leaf|damaged at line 4 \(content does not match its leaf\)/.test(err.message))
    assert.equal(readFileSync(seg, 'utf8'), lines.join('\n'), 'nothing was rewritten')

    await assert.rejects(forgetSubject({ dataDir, subject: 'alice' }), (err: FlytrapError) => err.exit === 2)
    await assert.rejects(forgetSubject({ dataDir: tempData(), subject: ALICE }), (err: FlytrapError) => err.exit === 3 && /no journal/.test(err.message))
  })
})
