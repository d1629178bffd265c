/**
 * The audit report over a scripted history on anvil (topics, grants, a transfer, joins with fees, revokes,
 * a withdrawal, bans, summaries, an anchor, a reporter removed) and a local journal: rows for a time range,
 * a topic and a client; table-ready rows, JSON and CSV; forged events of another contract ignored.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { encodeCountries, topicId } from '../../../src/lib/chain/codec.js'
import { ReporterHistory } from '../../../src/lib/chain/reporters.js'
import { buildReport, CSV_COLUMNS, parseReportTime, toCsv, toJson, type AuditReport, type ReportRow } from '../../../src/lib/audit/report.js'
import { subjectForAddress } from '../../../src/lib/proxy/bans.js'
import type { ChainFixture } from '../../helpers/chain.js'
import { banUntil, forgedDeployment, historyFixture, PERIOD_MS, plantSteps, runSteps, sensitiveMembers, writeJournal } from '../../helpers/history.js'
import { topicArgs } from '../../helpers/topics.js'

let fx: ChainFixture
/** Start of the scripted hour (unix seconds, a multiple of 3600 so 10-minute periods align). */
let S: number
let dataDir: string
let ADMIN: string, REPORTER: string, ALICE: string, BOB: string, CAROL: string, MALLORY: string
const P = PERIOD_MS
const root = (s: string) => topicId(s)

before(async () => {
  const h = await historyFixture('flytrap-report-')
  ;({ fx, S, dataDir, ADMIN, REPORTER, ALICE, BOB, CAROL } = h)
  MALLORY = h.mallory.address
  const { admin, alice, carol } = h

  // The proxy's journal: period A = [S, S+600) is anchored below, period B = [S+600, S+1200) is not.
  const [periodA] = await writeJournal(h, [
    [100, { kind: 'connect', outcome: 'allow', reason: 'tls', address: BOB, clientId: 'bob-1', country: 'DE', ip: '203.0.113.9' }],
    [200, { kind: 'publish', outcome: 'allow', reason: 'granted', address: BOB, clientId: 'bob-1', topic: 'plant/valve', sensitive: true }],
    [250, { kind: 'subscribe', outcome: 'deny', reason: 'not-member', address: ALICE, clientId: 'a', topic: 'plant/#' }],
    [700, { kind: 'publish', outcome: 'deny', reason: 'not-member', address: BOB, clientId: 'bob-1', topic: 'plant/valve' }],
    [800, { kind: 'connect', outcome: 'deny', reason: 'signature', ip: '198.51.100.66' }],
  ])
  assert.equal(periodA!.count, 3)
  const members = await sensitiveMembers(h, 'plant/valve', 0, 600)

  await runSteps(h, [
    ...plantSteps(h, { periodA: periodA!, members, bobGrantReason: 'maintenance contract, "valve" team' }),
    [420, () => alice.setCountries('plant/valve', encodeCountries(['GB', 'DE']), 'geo-fence')],
    // The namespace model: a filter and the names under it have one owner, so the plant namespace moves as a whole.
    [480, () => alice.transferTopics(['plant/#', 'plant/valve'], CAROL, 'handover')],
    [540, () => carol.allow('plant/#', BOB, 2, 0, 'site feed for bob')],
    [600, () => carol.revoke('plant/valve', BOB, 1, 'contract ended')],
    [660, () => alice.withdraw(ALICE)],
    [960, () => admin.removeReporter(REPORTER, 'decommissioned')],
    [1080, () => carol.setFlags('plant/valve', { sensitive: true, open: false }, '=1+1 formula?')],
  ])

  // Mallory's own FlyTrap: same events, same topics, another address.
  const fake = await forgedDeployment(h, 1140)
  await runSteps(h, [
    [1200, () => fake.addReporter(MALLORY, 'me')],
    [1260, () => fake.recordBans([subjectForAddress(BOB)], [banUntil(h)], 'forged')],
    [1320, () => fake.anchor({ fromTime: S + 600, toTime: S + 1200, firstSeq: 1, count: 999, root: root('forged root'), index: root('forged index'), prevChain: root('x'), chain: root('y') })],
    [1380, () => fake.recordSensitive(topicId('plant/valve'), S, S + 600, { publishers: 1, published: 77, receivers: 0, received: 0, membersRoot: members.membersRoot })],
    [1440, () => fake.addTopic(topicArgs('plant/valve', { reason: 'forged' }))],
  ])
  await fx.increaseTime(3600)
})
after(async () => {
  await fx?.close()
})

const report = (o: { from?: number; to?: number; topic?: string; clientAddress?: string; journal?: boolean } = {}) =>
  buildReport({ client: fx.as(0), from: (S + (o.from ?? 0)) * 1000, to: (S + (o.to ?? 3600)) * 1000, topic: o.topic, clientAddress: o.clientAddress, dataDir: o.journal === false ? undefined : dataDir, deployBlock: fx.deployBlock })

const brief = (r: ReportRow) => `${r.time.slice(11, 19)} ${r.source} ${r.event}${r.topic ? ` ${r.topic}` : ''}`

describe('audit report: the whole range', () => {
  let rep: AuditReport
  before(async () => {
    rep = await report()
  })

  test('chain and journal rows merged in time order, with actors and reasons', () => {
    const hhmmss = (off: number) => new Date((S + off) * 1000).toISOString().slice(11, 19)
    assert.deepEqual(
      rep.rows.map(brief),
      [
        `${hhmmss(60)} chain ReporterAdded`,
        `${hhmmss(100)} journal connect`,
        `${hhmmss(120)} chain TopicAdded plant/valve`,
        `${hhmmss(180)} chain TopicAdded plant/#`,
        `${hhmmss(200)} journal publish plant/valve`,
        `${hhmmss(240)} chain Granted plant/valve`,
        `${hhmmss(250)} journal subscribe plant/#`,
        `${hhmmss(300)} chain Joined plant/valve`,
        `${hhmmss(360)} chain TopicFeesChanged plant/valve`,
        `${hhmmss(420)} chain TopicCountriesChanged plant/valve`,
        `${hhmmss(480)} chain TopicTransferred plant/#`,
        `${hhmmss(480)} chain TopicTransferred plant/valve`,
        `${hhmmss(540)} chain Granted plant/#`,
        `${hhmmss(600)} chain Revoked plant/valve`,
        `${hhmmss(660)} chain Withdrawn`,
        `${hhmmss(700)} journal publish plant/valve`,
        `${hhmmss(720)} chain Banned`,
        `${hhmmss(720)} chain Banned`,
        `${hhmmss(780)} chain DeniedSummary plant/valve`,
        `${hhmmss(780)} chain DeniedSummary $connect`,
        `${hhmmss(800)} journal connect`,
        `${hhmmss(840)} chain SensitiveReport plant/valve`,
        `${hhmmss(840)} chain SensitiveReport plant/valve`,
        `${hhmmss(900)} chain Anchored`,
        `${hhmmss(960)} chain ReporterRemoved`,
        `${hhmmss(1080)} chain TopicFlagsChanged plant/valve`,
      ],
    )
    assert.equal(rep.contract, fx.address)
    assert.deepEqual(rep.filters, { topic: null, client: null })
    assert.equal(rep.journal!.entries, 5)
    assert.deepEqual(rep.ignored, { notReporter: 0 })
  })

  test('grants and revokes name the topic owner at that block as actor (after a transfer, the new owner)', () => {
    const g = rep.rows.filter((r) => r.event === 'Granted' || r.event === 'Revoked')
    assert.deepEqual(
      g.map((r) => [r.event, r.topic, r.client, r.actor, r.reason]),
      [
        ['Granted', 'plant/valve', BOB, ALICE, 'maintenance contract, "valve" team'],
        ['Granted', 'plant/#', BOB, CAROL, 'site feed for bob'],
        ['Revoked', 'plant/valve', BOB, CAROL, 'contract ended'],
      ],
    )
    assert.match(g[0]!.detail!, /roles publish; until never/)
    const t = rep.rows.find((r) => r.event === 'TopicTransferred' && r.topic === 'plant/#')!
    assert.deepEqual([t.actor, t.detail, t.reason], [ALICE, `from ${ALICE} to ${CAROL}`, 'handover'])
  })

  test('joins with payment, withdrawals, fee/country/flag changes with actor and reason', () => {
    const j = rep.rows.find((r) => r.event === 'Joined')!
    assert.deepEqual([j.client, j.actor], [BOB, BOB])
    assert.match(j.detail!, /^paid 0\.002 ETH; roles subscribe; publish until never; subscribe until never$/)
    const w = rep.rows.find((r) => r.event === 'Withdrawn')!
    assert.deepEqual([w.actor, w.detail], [ALICE, `0.002 ETH to ${ALICE}`])
    const added = rep.rows.find((r) => r.event === 'TopicAdded')!
    assert.deepEqual([added.actor, added.reason], [ALICE, 'installer request #1'])
    assert.match(added.detail!, /pubFee 0\.001 ETH; subFee 0\.002 ETH; flags sensitive,open/)
    assert.equal(rep.rows.find((r) => r.event === 'TopicCountriesChanged')!.detail, 'countries DE GB')
    assert.ok(rep.rows.every((r) => r.source === 'journal' || (r.txHash && r.block !== null)))
  })

  test('reporter records: bans (address and keyed IP hash), summaries per topic and per member, the anchor', () => {
    const bans = rep.rows.filter((r) => r.event === 'Banned')
    assert.deepEqual(
      bans.map((r) => [r.client, r.actor, r.reason]),
      [
        [BOB, REPORTER, 'threshold'],
        [null, REPORTER, 'threshold'],
      ],
    )
    assert.match(bans[1]!.detail!, /^keyed IP hash 0x[0-9a-f]{64}; until /)
    assert.deepEqual(
      rep.rows.filter((r) => r.event === 'DeniedSummary').map((r) => [r.topic, r.detail!.split(' ')[0]]),
      [
        ['plant/valve', '5'],
        ['$connect', '2'],
      ],
    )
    assert.deepEqual(
      rep.rows.filter((r) => r.event === 'SensitiveReport').map((r) => [r.client, r.detail!.split(' in ')[0]]),
      [
        [null, 'publishers 1 (published 1), receivers 0 (received 0)'],
        [BOB, 'published 1'],
      ],
    )
    // On chain: counts and a root. The member row comes from the journal, whose records have that root.
    const summary = rep.rows.find((r) => r.event === 'SensitiveReport' && r.client === null)!
    assert.match(summary.detail!, /; members committed, root 0x[0-9a-f]{64}; opened from the journal \(1 records\)$/)
    const a = rep.rows.find((r) => r.event === 'Anchored')!
    assert.match(a.detail!, /^anchor: seq 1\.\.3 \(3 entries\) in \[.*\); root 0x[0-9a-f]{64}, index 0x[0-9a-f]{64}, chain 0x[0-9a-f]{64}$/)
  })

  test('journal rows are proven where an anchor of a registered reporter covers them (not by a forged one)', () => {
    const j = rep.rows.filter((r) => r.source === 'journal')
    assert.deepEqual(
      j.map((r) => [r.event, r.proven]),
      [
        ['connect', true],
        ['publish', true],
        ['subscribe', true],
        ['publish', false], // period B: only Mallory's contract "anchored" it
        ['connect', false],
      ],
    )
    assert.ok(j.every((r) => r.txHash === null && r.block === null && r.actor === null))
    assert.equal(j[0]!.client, BOB)
    assert.match(j[0]!.detail!, /^allow; entry #1; client id bob-1; country DE$/)
    assert.ok(!JSON.stringify(rep).includes('203.0.113.9'), 'IP addresses stay out of the report')
  })

  test('proven is decided by the chain: a meta.json naming another reporter changes nothing', async () => {
    const metaFile = join(dataDir, 'journal', 'meta.json')
    const saved = existsSync(metaFile) ? readFileSync(metaFile, 'utf8') : null
    try {
      writeFileSync(metaFile, JSON.stringify({ version: 1, periodMs: P, ...(saved ? JSON.parse(saved) : {}), reporter: MALLORY }))
      const again = await report()
      assert.deepEqual(again.rows.filter((r) => r.source === 'journal').map((r) => r.proven), [true, true, true, false, false])
    } finally {
      if (saved === null) rmSync(metaFile)
      else writeFileSync(metaFile, saved)
    }
  })

  test("a forged contract's events at the same topics are ignored", () => {
    assert.ok(rep.rows.every((r) => r.source === 'journal' || r.block! < (rep.blocks?.to ?? 0) + 1))
    assert.ok(!rep.rows.some((r) => r.reason === 'forged' || /999 entries|published 77/.test(r.detail ?? '')))
    assert.equal(rep.rows.filter((r) => r.event === 'Banned').length, 2)
    assert.equal(rep.rows.filter((r) => r.event === 'TopicAdded' && r.topic === 'plant/valve').length, 1)
  })
})

describe('audit report: filters', () => {
  test('a time range: only rows inside [from, to)', async () => {
    const rep = await report({ from: 480, to: 720 })
    assert.deepEqual(
      rep.rows.map((r) => r.event),
      // The summaries of [S, S+600) overlap the range: selected by the interval they cover, not their block.
      ['TopicTransferred', 'TopicTransferred', 'Granted', 'Revoked', 'Withdrawn', 'publish', 'DeniedSummary', 'DeniedSummary', 'SensitiveReport', 'SensitiveReport'],
      'the bans at exactly `to` are out',
    )
    assert.ok(rep.blocks && rep.blocks.to >= rep.blocks.from)
  })

  test('summaries are selected by the interval they cover: --to at the end of their period keeps them, a range after it does not', async () => {
    // [S, S+600) is the period; its summaries were mined at +780 and +840, after it.
    const rep = await report({ from: 0, to: 600 })
    const ev = rep.rows.filter((r) => r.source === 'chain').map((r) => r.event)
    assert.deepEqual(ev.filter((e) => e === 'DeniedSummary' || e === 'SensitiveReport'), ['DeniedSummary', 'DeniedSummary', 'SensitiveReport', 'SensitiveReport'])
    const later = await report({ from: 600, to: 900 })
    assert.ok(!later.rows.some((r) => r.event === 'DeniedSummary' || r.event === 'SensitiveReport'), 'a range after the period has none of its summaries, though they were mined in it')
  })

  test('a topic: its own rows and those of registered filters that match it; no unrelated rows', async () => {
    const rep = await report({ topic: 'plant/valve' })
    assert.deepEqual(rep.filters, { topic: 'plant/valve', client: null })
    assert.deepEqual(
      rep.rows.map((r) => `${r.source} ${r.event} ${r.topic}`),
      [
        'chain TopicAdded plant/valve',
        'chain TopicAdded plant/#',
        'journal publish plant/valve',
        'chain Granted plant/valve',
        'journal subscribe plant/#',
        'chain Joined plant/valve',
        'chain TopicFeesChanged plant/valve',
        'chain TopicCountriesChanged plant/valve',
        'chain TopicTransferred plant/#',
        'chain TopicTransferred plant/valve',
        'chain Granted plant/#',
        'chain Revoked plant/valve',
        'journal publish plant/valve',
        'chain DeniedSummary plant/valve',
        'chain SensitiveReport plant/valve',
        'chain SensitiveReport plant/valve',
        'chain TopicFlagsChanged plant/valve',
      ],
    )
  })

  test('a client: every row that names it, and nothing else', async () => {
    const rep = await report({ clientAddress: BOB.toLowerCase() })
    assert.deepEqual(rep.filters.client, BOB)
    assert.deepEqual(
      rep.rows.map((r) => `${r.source} ${r.event}${r.topic ? ` ${r.topic}` : ''}`),
      ['journal connect', 'journal publish plant/valve', 'chain Granted plant/valve', 'chain Joined plant/valve', 'chain Granted plant/#', 'chain Revoked plant/valve', 'journal publish plant/valve', 'chain Banned', 'chain SensitiveReport plant/valve'],
    )
    assert.ok(rep.rows.every((r) => r.client === BOB || r.actor === BOB))
  })

  test('a topic and a client together', async () => {
    const rep = await report({ topic: 'plant/#', clientAddress: BOB, journal: false })
    assert.deepEqual(
      rep.rows.map((r) => `${r.event} ${r.topic}`),
      ['Granted plant/valve', 'Joined plant/valve', 'Granted plant/#', 'Revoked plant/valve'],
      'without the journal, the committed sensitive report names nobody',
    )
    assert.equal(rep.journal, null)
  })
})

describe('audit report: reporters', () => {
  test('a removed reporter’s earlier records still count; after removal it cannot write any (the contract refuses)', async () => {
    await assert.rejects(fx.as(1).recordBans([subjectForAddress(BOB)], [S + 99_999], 'too late'), /NotReporter/)
    await assert.rejects(fx.as(3).anchor({ fromTime: 0, toTime: 1, firstSeq: 1, count: 1, root: root('x'), index: root('i'), prevChain: root('p'), chain: root('c') }), /NotReporter/, 'nor can a stranger')
    const rep = await report({ journal: false })
    assert.equal(rep.rows.filter((r) => r.actor === REPORTER).length, 2 + 2 + 1 + 1, 'bans, denied summaries, the sensitive report (one row without the journal), the anchor')
  })

  test('ReporterHistory: registered strictly before the event (block, log index); removal ends it', () => {
    const h = new ReporterHistory()
    h.add(REPORTER, [10, 3], true)
    h.add(REPORTER, [20, 0], false)
    h.add(REPORTER, [30, 5], true)
    assert.equal(h.registeredAt(REPORTER, [10, 2]), false, 'earlier in the same block')
    assert.equal(h.registeredAt(REPORTER, [10, 4]), true)
    assert.equal(h.registeredAt(REPORTER.toLowerCase(), [19, 99]), true)
    assert.equal(h.registeredAt(REPORTER, [20, 1]), false)
    assert.equal(h.registeredAt(REPORTER, [31, 0]), true)
    assert.equal(h.registeredAt(ADMIN, [31, 0]), false)
  })
})

describe('audit report: output', () => {
  test('CSV: RFC 4180 (header, CRLF, quoted fields, doubled quotes); formulas defused', async () => {
    const rep = await report({ clientAddress: BOB, journal: false })
    const csv = toCsv(rep.rows)
    const lines = csv.split('\r\n')
    assert.equal(lines[0], CSV_COLUMNS.join(','))
    assert.equal(lines[0], 'time,block,source,event,topic,client,actor,reason,detail,txHash,proven,verified,claimed,grantKind,grantRule,grantTx,grantBy,grantAt,grantUntil,grantReason,seq')
    assert.equal(lines.at(-1), '', 'ends with CRLF')
    assert.equal(lines.length, rep.rows.length + 2)
    assert.ok(!csv.replaceAll('\r\n', '').includes('\n'), 'no bare LF')
    const granted = lines.find((l) => l.includes(',Granted,'))!
    assert.ok(granted.includes(`,"maintenance contract, ""valve"" team",`), granted)
    const all = toCsv((await report({ journal: false })).rows)
    assert.ok(all.includes(`,'=1+1 formula?,`), 'a leading = is prefixed with an apostrophe')
  })

  test('JSON: stable shape, every key present in a fixed order, round-trips', async () => {
    const rep = await report({ topic: 'plant/valve' })
    const json = toJson(rep)
    const back = JSON.parse(json) as AuditReport
    assert.deepEqual(back, rep)
    assert.deepEqual(Object.keys(back), ['version', 'contract', 'chainId', 'from', 'to', 'blocks', 'filters', 'journal', 'ignored', 'rows', 'grantsAtFrom'])
    const ROW_KEYS = ['time', 'block', 'source', 'event', 'topic', 'client', 'actor', 'reason', 'detail', 'txHash', 'proven', 'verified', 'claimed', 'grant', 'seq']
    for (const r of back.rows) assert.deepEqual(Object.keys(r), ROW_KEYS)
    assert.equal(back.version, 1)
    assert.equal(back.from, new Date(S * 1000).toISOString())
  })

  test('--from/--to parsing: ISO dates and times, unix seconds, ages; a bare --to date means the end of that day', () => {
    const now = Date.UTC(2027, 0, 31, 12)
    assert.equal(parseReportTime('2027-01-01'), Date.UTC(2027, 0, 1))
    assert.equal(parseReportTime('2027-01-01', { end: true }), Date.UTC(2027, 0, 2))
    assert.equal(parseReportTime('2027-01-01T10:30Z'), Date.UTC(2027, 0, 1, 10, 30))
    assert.equal(parseReportTime('1800000000'), 1_800_000_000_000)
    assert.equal(parseReportTime('7d', { now }), now - 7 * 86_400_000)
    assert.equal(parseReportTime('now', { now }), now)
    assert.throws(() => parseReportTime('yesterday'), /not a date/)
  })

  test('an empty range: no blocks, no rows; to before from is refused', async () => {
    const rep = await buildReport({ client: fx.as(0), from: (S + 86_400 * 30) * 1000, to: (S + 86_400 * 31) * 1000, deployBlock: fx.deployBlock })
    assert.equal(rep.blocks, null)
    assert.deepEqual(rep.rows, [])
    await assert.rejects(buildReport({ client: fx.as(0), from: 2_000, to: 1_000 }), /after --from/)
  })
})
