/**
 * The audit web API over a scripted history on anvil (topics with fees and countries, grants, a join with
 * payment, a revoke, bans, a denied summary, a sensitive report, a verified and a mismatching anchor against
 * a local journal) plus a look-alike FlyTrap deployment whose forged events must not show: every endpoint's
 * shape and values, pagination, time filters, 4xx, CSV, CORS, static files, openapi.json, polling, and no
 * chain access per request.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FlyTrapClient, connect, rawRpc } from '../../../src/lib/chain/client.js'
import { encodeCountries, topicId } from '../../../src/lib/chain/codec.js'
import { buildReport, toCsv } from '../../../src/lib/audit/report.js'
import { subjectForAddress, subjectForIp } from '../../../src/lib/proxy/bans.js'
import { ChainIndex } from '../../../src/lib/web/chain-index.js'
import { memberView, type IndexEvent } from '../../../src/lib/web/views.js'
import { startWebServer, type WebServer } from '../../../src/lib/web/http-server.js'
import { openApiDocument } from '../../../src/lib/web/openapi.js'
import { checkBundle } from '../../../src/lib/audit/evidence/check.js'
import { indexedLink, type ChainFixture } from '../../helpers/chain.js'
import { banUntil, forgedDeployment, historyFixture, plantSteps, runSteps, sensitiveMembers, writeJournal } from '../../helpers/history.js'
import { topicArgs } from '../../helpers/topics.js'

let fx: ChainFixture
let S: number
let dataDir: string
let membersRoot: string
let staticDir: string
let ADMIN: string, REPORTER: string, ALICE: string, BOB: string, CAROL: string
let index: ChainIndex
let web: WebServer
let bare: WebServer
const iso = (off: number) => new Date((S + off) * 1000).toISOString()

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any

async function get(path: string, init: RequestInit = {}, base = web.address): Promise<{ status: number; body: Json; headers: Headers; text: string }> {
  const res = await fetch(base + path, init)
  const text = await res.text()
  let body: Json = null
  try {
    body = JSON.parse(text)
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers, text }
}

before(async () => {
  const h = await historyFixture('flytrap-web-')
  ;({ fx, S, dataDir, ADMIN, REPORTER, ALICE, BOB, CAROL } = h)
  const { alice, reporter, mallory } = h

  // The proxy's journal: period A [S, S+600) is anchored with its true root, period B with a wrong one.
  const [periodA, periodB] = await writeJournal(
    h,
    [
      [100, { kind: 'connect', outcome: 'allow', reason: 'tls', address: BOB, clientId: 'bob-1', country: 'DE', ip: '203.0.113.9' }],
      [200, { kind: 'publish', outcome: 'allow', reason: 'granted', address: BOB, clientId: 'bob-1', topic: 'plant/valve', sensitive: true, count: 3 }],
      [700, { kind: 'publish', outcome: 'deny', reason: 'not-member', address: BOB, clientId: 'bob-1', topic: 'plant/valve' }],
    ],
    2,
  )
  const members = await sensitiveMembers(h, 'plant/valve', 0, 600)
  membersRoot = members.membersRoot

  await runSteps(h, [
    ...plantSteps(h, { periodA: periodA!, members, valveCountries: ['GB', 'DE'], bobGrantReason: 'maintenance contract' }),
    [330, () => alice.allow('plant/#', CAROL, 2, S + 100_000, 'site feed for carol')],
    [600, () => alice.revoke('plant/valve', BOB, 1, 'contract ended')],
    [1260, async () => reporter.anchor({ ...(await indexedLink(dataDir, periodB!)), root: topicId('not the root') })], // continues the sequence, with a wrong root
  ])

  // Mallory's own FlyTrap: the same events about the same topic and clients, from another address.
  const fake = await forgedDeployment(h, 1300)
  await runSteps(h, [
    [1320, () => fake.addReporter(mallory.address, 'me')],
    [1340, () => fake.recordBans([subjectForAddress(BOB)], [banUntil(h)], 'forged')],
    [1360, () => fake.anchor({ fromTime: S, toTime: S + 600, firstSeq: 1, count: 999, root: topicId('forged root'), index: topicId('forged index'), prevChain: topicId('x'), chain: topicId('y') })],
    [1380, () => fake.addTopic(topicArgs('plant/valve', { open: true, reason: 'forged' }))],
    [1400, () => fake.recordSensitive(topicId('plant/valve'), S, S + 600, { publishers: 1, published: 77, receivers: 0, received: 0, membersRoot: topicId('forged') })],
  ])
  await fx.increaseTime(60)

  index = await ChainIndex.create({ client: fx.as(0), deployBlock: fx.deployBlock, dataDir, pollIntervalMs: 200 })
  staticDir = mkdtempSync(join(tmpdir(), 'flytrap-web-dist-'))
  mkdirSync(join(staticDir, 'assets'))
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>FlyTrap UI</title><div id="app"></div>')
  writeFileSync(join(staticDir, 'assets', 'app-123.js'), 'console.log("ui")')
  web = await startWebServer({ index, port: 0, host: '127.0.0.1', cors: ['http://ui.example'], staticDir, rpc: rawRpc(fx.provider) })
  bare = await startWebServer({ index, port: 0, host: '127.0.0.1', staticDir: join(staticDir, 'missing'), explorer: 'https://explorer.example' })
})

after(async () => {
  index?.close()
  await web?.close()
  await bare?.close()
  await fx?.close()
})

describe('status, topics, members', () => {
  test('/api/status', async () => {
    const { status, body } = await get('/api/status')
    assert.equal(status, 200)
    assert.equal(body.chainId, fx.chainId)
    assert.equal(body.contract, fx.address)
    assert.equal(body.synced, true)
    assert.ok(body.block >= fx.deployBlock)
    assert.ok(!Number.isNaN(Date.parse(body.lastSyncAt)))
    assert.equal(body.topics, 2)
    assert.equal(body.members, 2) // bob (subscribe) on plant/valve, carol on plant/#
    assert.equal(body.events, 15)
    assert.equal(body.bans, 2)
    assert.equal(body.anchors, 2)
    assert.equal(body.ignored, 0)
    assert.equal(body.explorer, null)
    assert.equal((await get('/api/status', {}, bare.address)).body.explorer, 'https://explorer.example', 'the explorer the UI links to (audit serve --explorer)')
  })

  test('/api/topics: policy from the topics() view, members counted', async () => {
    const { status, body } = await get('/api/topics')
    assert.equal(status, 200)
    assert.deepEqual(body.topics, [
      { name: 'plant/valve', id: topicId('plant/valve'), owner: ALICE, pubFeeEth: '0.003', subFeeEth: '0.004', sensitive: true, open: true, periodSeconds: 0, countries: ['DE', 'GB'], members: 1 },
      { name: 'plant/#', id: topicId('plant/#'), owner: ALICE, pubFeeEth: '0', subFeeEth: '0', sensitive: false, open: false, periodSeconds: 0, countries: [], members: 1 },
    ])
  })

  test('/api/topics/{name}: members with expiry, history with actor and reason, sensitive reports', async () => {
    const { status, body } = await get(`/api/topics/${encodeURIComponent('plant/valve')}`)
    assert.equal(status, 200)
    assert.equal(body.topic.name, 'plant/valve')
    assert.deepEqual(body.members, [{ client: BOB, publish: false, subscribe: true, pubExpiry: null, subExpiry: 'never', status: 'active' }])
    assert.deepEqual(
      body.history.map((e: IndexEvent) => [e.type, e.actor, e.reason ?? null]),
      [
        ['SensitiveReport', REPORTER, null],
        ['DeniedSummary', REPORTER, null],
        ['Revoked', ALICE, 'contract ended'],
        ['TopicFeesChanged', ALICE, 'price review'],
        ['Joined', BOB, null],
        ['Granted', ALICE, 'maintenance contract'],
        ['TopicAdded', ALICE, 'installer request #1'],
      ],
    )
    const joined = body.history.find((e: IndexEvent) => e.type === 'Joined')
    assert.equal(joined.client, BOB)
    assert.equal(joined.time, iso(300))
    assert.match(joined.detail, /^paid 0\.002 ETH; roles subscribe; publish until never; subscribe until never$/)
    assert.match(joined.tx, /^0x[0-9a-f]{64}$/)
    const added = body.history.find((e: IndexEvent) => e.type === 'TopicAdded')
    assert.match(added.detail, /pubFee 0\.001 ETH; subFee 0\.002 ETH; flags sensitive,open; period permanent; countries DE GB/)
    assert.equal(body.sensitiveReports.length, 1, 'the forged report of the other contract is not shown')
    const s = body.sensitiveReports[0]
    assert.deepEqual([s.form, s.publisherCount, s.published, s.receiverCount, s.received, s.membersRoot], ['committed', 1, 3, 0, 0, membersRoot])
    assert.deepEqual([s.publishers, s.receivers], [[], []], 'a committed report names nobody')
    assert.equal(body.sensitiveReports[0].reporter, REPORTER)
    assert.equal(body.sensitiveReports[0].fromTime, iso(0))
  })

  test('/api/topics/{name}: an unencoded slash works too; unknown topics are 404', async () => {
    const { body } = await get('/api/topics/plant%2F%23')
    assert.deepEqual(body.members, [{ client: CAROL, publish: false, subscribe: true, pubExpiry: null, subExpiry: new Date((S + 100_000) * 1000).toISOString(), status: 'active' }])
    assert.equal((await get('/api/topics/plant/valve')).body.topic.name, 'plant/valve')
    const missing = await get('/api/topics/no%2Fsuch')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, 'not_found')
    assert.match(missing.body.error.message, /no topic "no\/such"/)
  })

  test('/api/clients/{address}: rights and history; malformed address is 400', async () => {
    const { status, body } = await get(`/api/clients/${BOB.toLowerCase()}`)
    assert.equal(status, 200)
    assert.equal(body.address, BOB)
    assert.deepEqual(body.rights, [{ topic: 'plant/valve', client: BOB, publish: false, subscribe: true, pubExpiry: null, subExpiry: 'never', status: 'active' }])
    assert.deepEqual(
      body.history.map((e: IndexEvent) => e.type),
      ['Banned', 'Revoked', 'Joined', 'Granted'],
      'the committed sensitive report does not name him',
    )
    assert.ok(!body.history.some((e: IndexEvent) => e.reason === 'forged'))
    // His refused attempt, from the journal: the one deny of the journal, with its reason and client id.
    assert.deepEqual(body.refusals.map((r: Json) => [r.kind, r.reason, r.topic, r.clientId, r.unverified, r.count]), [['publish', 'not-member', 'plant/valve', 'bob-1', false, 1]])
    assert.equal(body.refusalsTotal, 1)
    assert.equal(body.refusals[0].time, iso(700))
    const carol = await get(`/api/clients/${CAROL}`)
    assert.deepEqual([carol.body.refusals, carol.body.refusalsTotal], [[], 0], 'another client’s refusals are not his')
    const badAddr = await get('/api/clients/0x1234')
    assert.equal(badAddr.status, 400)
    assert.equal(badAddr.body.error.code, 'bad_request')
    assert.match(badAddr.body.error.message, /not an Ethereum address/)
  })
})

describe('traffic over time', () => {
  test('/api/traffic from the journal: accesses, refusals by their reason, sensitive access per topic', async () => {
    const { status, body } = await get(`/api/traffic?from=${iso(0)}&to=${iso(3600)}&bucket=hour`)
    assert.equal(status, 200, JSON.stringify(body))
    assert.equal(body.source, 'journal')
    const sum = (f: (b: Json) => number) => body.buckets.reduce((a: number, b: Json) => a + f(b), 0)
    assert.equal(sum((b) => b.accesses), 4, 'the allowed connect and the 3 coalesced publishes')
    assert.deepEqual(body.refusalsByReason, { 'not-member': 1 })
    assert.equal(sum((b) => b.refusals['not-member'] ?? 0), 1)
    assert.deepEqual(body.refusedTopics, [{ topic: 'plant/valve', count: 1, registered: true }])
    assert.deepEqual(body.sensitiveByTopic, [{ topic: 'plant/valve', published: 3, delivered: 0, publishers: 1, receivers: 0 }])
    // Narrowed to before the refusal (at +700): none.
    const early = await get(`/api/traffic?from=${iso(0)}&to=${iso(650)}`)
    assert.deepEqual(early.body.refusalsByReason, {})
  })

  test('/api/traffic?source=chain: the denied summaries (connect / topic, no reason on chain) and the sensitive reports', async () => {
    const { status, body } = await get(`/api/traffic?from=${iso(-3600)}&to=${iso(3600)}&source=chain`)
    assert.equal(status, 200, JSON.stringify(body))
    assert.equal(body.source, 'chain')
    assert.ok(body.buckets.every((b: Json) => b.accesses === null), 'the chain records no accesses')
    assert.deepEqual(body.refusalsByReason, { topic: 5, connect: 2 })
    assert.deepEqual(body.refusedTopics.map((t: Json) => [t.topic, t.count, t.registered]), [['plant/valve', 5, true], ['$connect', 2, true]])
    const reports = (await get('/api/sensitive')).body.sensitive
    assert.equal(reports.length, 1)
    assert.deepEqual(body.sensitiveByTopic, [{ topic: 'plant/valve', published: reports[0].published, delivered: reports[0].received, publishers: reports[0].publisherCount, receivers: reports[0].receiverCount }])
    const bad = await get('/api/traffic?source=ledger')
    assert.equal(bad.status, 400)
    assert.match(bad.body.error.message, /"source"/)
  })

  test('without a journal: traffic from the chain by default, source=journal is 503, a client has no journal refusals (null)', async () => {
    const chainOnly = await ChainIndex.create({ client: fx.as(0), deployBlock: fx.deployBlock, pollIntervalMs: 60_000 })
    const server = await startWebServer({ index: chainOnly, port: 0, host: '127.0.0.1' })
    try {
      const t = await get(`/api/traffic?from=${iso(-3600)}&to=${iso(3600)}`, {}, server.address)
      assert.equal(t.status, 200)
      assert.equal(t.body.source, 'chain')
      assert.deepEqual(t.body.refusalsByReason, { topic: 5, connect: 2 })
      const j = await get('/api/traffic?source=journal', {}, server.address)
      assert.equal(j.status, 503)
      assert.match(j.body.error.message, /--data-dir/)
      const c = await get(`/api/clients/${BOB}`, {}, server.address)
      assert.deepEqual([c.body.refusals, c.body.refusalsTotal], [null, 0])
    } finally {
      chainOnly.close()
      await server.close()
    }
  })

  test('members read as revoked when no right is left, expired when a right lapsed', () => {
    const client = BOB
    assert.equal(memberView({ client, pubExpiry: 0n, subExpiry: 0n } as never, 1000).status, 'revoked')
    assert.equal(memberView({ client, pubExpiry: 500n, subExpiry: 0n } as never, 1000).status, 'expired')
    assert.equal(memberView({ client, pubExpiry: 500n, subExpiry: 2000n } as never, 1000).status, 'active')
  })
})

describe('lists: events, bans, denied, sensitive, anchors', () => {
  test('/api/events: only this contract, chain order with asc, newest first by default', async () => {
    const asc = await get('/api/events?order=asc&limit=1000')
    assert.equal(asc.status, 200)
    assert.deepEqual(
      asc.body.events.map((e: IndexEvent) => e.type),
      ['AdminChanged', 'ReporterAdded', 'TopicAdded', 'TopicAdded', 'Granted', 'Joined', 'Granted', 'TopicFeesChanged', 'Revoked', 'Banned', 'Banned', 'DeniedSummary', 'SensitiveReport', 'Anchored', 'Anchored'],
    )
    assert.equal(asc.body.nextCursor, null)
    const desc = await get('/api/events')
    assert.deepEqual(desc.body.events, [...asc.body.events].reverse())
    assert.ok(asc.body.events.every((e: IndexEvent) => e.tx && e.time && Number.isInteger(e.block)))
    assert.equal(asc.body.events[1].actor, ADMIN)
    assert.equal(asc.body.events[1].client, REPORTER)
  })

  test('/api/events: cursor pagination visits every event once', async () => {
    const all = (await get('/api/events?limit=1000')).body.events
    const seen: IndexEvent[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const r: { body: { events: IndexEvent[]; nextCursor: string | null } } = await get(`/api/events?limit=4${cursor ? `&cursor=${cursor}` : ''}`)
      assert.ok(r.body.events.length <= 4)
      seen.push(...r.body.events)
      cursor = r.body.nextCursor
      pages++
    } while (cursor)
    assert.equal(pages, Math.ceil(all.length / 4))
    assert.deepEqual(seen, all)
  })

  test('/api/events: time range, topic, client and type filters', async () => {
    const r = await get(`/api/events?from=${encodeURIComponent(iso(240))}&to=${encodeURIComponent(iso(600))}&order=asc`)
    assert.deepEqual(r.body.events.map((e: IndexEvent) => e.time), [iso(240), iso(300), iso(330), iso(360)])
    const unix = await get(`/api/events?from=${S + 240}&to=${S + 241}`)
    assert.deepEqual(unix.body.events.map((e: IndexEvent) => e.type), ['Granted'])
    const byType = await get('/api/events?type=Granted,Revoked&order=asc')
    assert.deepEqual(byType.body.events.map((e: IndexEvent) => `${e.type} ${e.client}`), [`Granted ${BOB}`, `Granted ${CAROL}`, `Revoked ${BOB}`])
    const byTopic = await get(`/api/events?topic=${encodeURIComponent('plant/#')}&order=asc`)
    assert.deepEqual(byTopic.body.events.map((e: IndexEvent) => e.type), ['TopicAdded', 'Granted'])
    const byClient = await get(`/api/events?client=${CAROL}&order=asc`)
    assert.deepEqual(byClient.body.events.map((e: IndexEvent) => e.type), ['Granted'], 'the committed sensitive report does not name her')
  })

  test('/api/bans, /api/denied, /api/sensitive', async () => {
    const bans = (await get('/api/bans?order=asc')).body
    assert.equal(bans.bans.length, 2)
    assert.deepEqual(
      bans.bans.map((b: { client: string | null; reason: string; reporter: string; until: string }) => [b.client, b.reason, b.reporter, b.until]),
      [
        [BOB, 'threshold', REPORTER, iso(86_400)],
        [null, 'threshold', REPORTER, iso(86_400)],
      ],
    )
    assert.equal(bans.bans[1].subject, subjectForIp('198.51.100.66', 'k'))
    assert.equal((await get(`/api/bans?client=${BOB}`)).body.bans.length, 1)
    const denied = (await get('/api/denied')).body.denied
    assert.equal(denied.length, 1)
    assert.equal(denied[0].total, 7)
    assert.deepEqual(denied[0].counts.map((c: { topic: string; count: number }) => [c.topic, c.count]), [['plant/valve', 5], ['$connect', 2]])
    assert.deepEqual([denied[0].fromTime, denied[0].toTime], [iso(0), iso(600)])
    assert.equal((await get('/api/sensitive?topic=plant%2Fvalve')).body.sensitive.length, 1)
    assert.equal((await get('/api/sensitive?topic=other')).body.sensitive.length, 0)
    assert.equal((await get(`/api/denied?from=${S + 800}`)).body.denied.length, 0)
  })

  test('/api/anchors: verified and mismatch against the local journal; forged anchor absent', async () => {
    const { body } = await get('/api/anchors?order=asc')
    assert.deepEqual(
      body.anchors.map((a: { status: string; count: number; reporter: string; fromTime: string; toTime: string; seq: number }) => [a.status, a.count, a.reporter, a.fromTime, a.toTime]),
      [
        ['verified', 2, REPORTER, iso(0), iso(600)],
        ['mismatch', 1, REPORTER, iso(600), iso(1200)],
      ],
    )
    assert.match(body.anchors[0].root, /^0x[0-9a-f]{64}$/)
    assert.equal((await get('/api/anchors?status=verified')).body.anchors.length, 1)
  })

  test('/api/activity: counts per type and refusals per topic in hour buckets', async () => {
    const { status, body } = await get(`/api/activity?from=${S}&to=${S + 7200}&bucket=hour`)
    assert.equal(status, 200)
    assert.equal(body.buckets.length, 2)
    assert.equal(body.buckets[0].start, iso(0))
    assert.deepEqual(body.buckets[0].counts, { ReporterAdded: 1, TopicAdded: 2, Granted: 2, Joined: 1, TopicFeesChanged: 1, Revoked: 1, Banned: 2, DeniedSummary: 1, SensitiveReport: 1, Anchored: 2 })
    assert.deepEqual(body.buckets[0].refusals, { 'plant/valve': 5, $connect: 2 })
    assert.deepEqual(body.buckets[1].counts, {})
    const day = await get(`/api/activity?from=${S}&to=${S + 7200}&bucket=day`)
    // One day bucket, or two when the two hours cross a UTC midnight.
    const days = Math.floor((S + 7199) / 86400) - Math.floor(S / 86400) + 1
    assert.equal(day.body.buckets.length, days)
  })
})

describe('report', () => {
  test('/api/report: the rows of `audit report` as JSON', async () => {
    const expected = await buildReport({ client: fx.as(0), from: S * 1000, to: (S + 3600) * 1000, dataDir, deployBlock: fx.deployBlock })
    const { status, body } = await get(`/api/report?from=${S}&to=${S + 3600}`)
    assert.equal(status, 200)
    assert.deepEqual(body.rows, expected.rows)
    assert.ok(body.rows.some((r: { source: string }) => r.source === 'journal'))
    const topicOnly = await get(`/api/report?from=${S}&to=${S + 3600}&topic=plant%2F%23&client=${CAROL}`)
    assert.deepEqual(topicOnly.body.filters, { topic: 'plant/#', client: CAROL })
    assert.ok(topicOnly.body.rows.length > 0)
  })

  test('/api/report?format=csv: the same CSV as the command, as an attachment', async () => {
    const expected = await buildReport({ client: fx.as(0), from: S * 1000, to: (S + 3600) * 1000, dataDir, deployBlock: fx.deployBlock })
    const r = await get(`/api/report?from=${S}&to=${S + 3600}&format=csv`)
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type')!, /^text\/csv/)
    assert.match(r.headers.get('content-disposition')!, /^attachment; filename="flytrap-report-.*\.csv"$/)
    assert.equal(r.text, toCsv(expected.rows))
  })
})

describe('evidence bundles (GET /api/evidence)', () => {
  let signed: WebServer
  let wrongKey: WebServer
  let noJournal: WebServer
  let bareIndex: ChainIndex
  before(async () => {
    signed = await startWebServer({ index, port: 0, host: '127.0.0.1', signer: fx.wallet(1) })
    wrongKey = await startWebServer({ index, port: 0, host: '127.0.0.1', signer: fx.wallet(2) })
    bareIndex = await ChainIndex.create({ client: fx.as(0), deployBlock: fx.deployBlock, pollIntervalMs: 60_000 })
    noJournal = await startWebServer({ index: bareIndex, port: 0, host: '127.0.0.1', signer: fx.wallet(1) })
  })
  after(async () => {
    await signed?.close()
    await wrongKey?.close()
    await noJournal?.close()
    bareIndex?.close()
  })
  const check = (bundle: unknown) => checkBundle(bundle, { provider: fx.provider, contract: fx.address, chainId: fx.chainId })

  test('a signed bundle for the range, a topic or a client, as an attachment that checkBundle accepts against the chain', async () => {
    const r = await get(`/api/evidence?from=${S}&to=${S + 600}`, {}, signed.address)
    assert.equal(r.status, 200, r.text)
    assert.match(r.headers.get('content-type')!, /^application\/json/)
    assert.match(r.headers.get('content-disposition')!, /^attachment; filename="flytrap-evidence-.*\.json"$/)
    assert.equal(r.body.signer, REPORTER)
    assert.equal(r.body.deployment.contract.toLowerCase(), fx.address.toLowerCase())
    const result = await check(r.body)
    assert.equal(result.ok, true, JSON.stringify(result.failures))
    assert.equal(result.offline, false)
    assert.ok(result.inScope.length >= 2, 'the connect and the publish of period A')

    const topic = await get(`/api/evidence?from=${S}&to=${S + 600}&topic=${encodeURIComponent('plant/valve')}`, {}, signed.address)
    assert.equal(topic.status, 200, topic.text)
    assert.match(topic.headers.get('content-disposition')!, /flytrap-evidence-topic-plant_valve-/)
    assert.equal(topic.body.scope.topic, 'plant/valve')
    assert.equal((await check(topic.body)).ok, true)
    const client = await get(`/api/evidence?from=${S}&to=${S + 600}&client=${BOB.toLowerCase()}`, {}, signed.address)
    assert.equal(client.status, 200, client.text)
    assert.equal(client.body.scope.client.toLowerCase(), BOB.toLowerCase())
    assert.equal((await check(client.body)).ok, true)

    // What the server sent is what was signed: one changed byte of an entry and the check names it.
    const tampered = structuredClone(r.body)
    const e = tampered.periods[0].entries.find((x: Json) => x.entry?.kind === 'publish')
    e.entry.topic = 'plant/other'
    const bad = await check(tampered)
    assert.equal(bad.ok, false)
    assert.match(bad.firstFailure!.record, /entry/)
  })

  test('a period whose journal no longer matches its anchor is refused (409), never exported', async () => {
    const r = await get(`/api/evidence?from=${S + 600}&to=${S + 1200}`, {}, signed.address)
    assert.equal(r.status, 409, r.text)
    assert.equal(r.body.error.code, 'journal_mismatch')
  })

  test('without the reporter key or the journal it answers 503 saying what is missing; a key that anchored nothing cannot sign', async () => {
    const noKey = await get(`/api/evidence?from=${S}&to=${S + 600}`)
    assert.equal(noKey.status, 503)
    assert.equal(noKey.body.error.code, 'unavailable')
    assert.match(noKey.body.error.message, /--key/)
    const noDir = await get(`/api/evidence?from=${S}&to=${S + 600}`, {}, noJournal.address)
    assert.equal(noDir.status, 503)
    assert.match(noDir.body.error.message, /--data-dir/)
    const other = await get(`/api/evidence?from=${S}&to=${S + 600}`, {}, wrongKey.address)
    assert.equal(other.status, 503)
    assert.match(other.body.error.message, /no anchors by/)
  })

  test('bad parameters are 400 naming them (before any key or journal is needed)', async () => {
    const cases: [string, RegExp][] = [
      ['/api/evidence?from=yesterday-ish', /"from"/],
      [`/api/evidence?from=${S + 10}&to=${S}`, /must be after/],
      ['/api/evidence?client=0xnope', /"client"/],
      ['/api/evidence?topic=a/%23/b', /"topic"/],
      [`/api/evidence?topic=plant&client=${BOB}`, /not both/],
      ['/api/evidence?topic=a&topic=b', /"topic" is given 2 times/],
    ]
    for (const base of [signed.address, web.address]) {
      for (const [path, message] of cases) {
        const r = await get(path, {}, base)
        assert.equal(r.status, 400, path)
        assert.equal(r.body.error.code, 'bad_request', path)
        assert.match(r.body.error.message, message, path)
      }
    }
    const none = await get(`/api/evidence?from=${S + 50_000}&to=${S + 60_000}`, {}, signed.address)
    assert.equal(none.status, 404)
    assert.equal(none.body.error.code, 'no_evidence')
  })
})

describe('errors, CORS, methods, static files, OpenAPI', () => {
  test('bad parameters are 400 with a message naming them', async () => {
    const cases: [string, RegExp][] = [
      ['/api/events?from=yesterday-ish', /"from"/],
      ['/api/events?to=2027-13-45', /"to"/],
      ['/api/events?limit=0', /"limit".*1 to 1000/],
      ['/api/events?limit=1001', /"limit"/],
      ['/api/events?limit=abc', /"limit"/],
      ['/api/events?cursor=zzz', /"cursor"/],
      ['/api/events?client=bob', /"client".*not an Ethereum address/],
      ['/api/events?type=Nope', /unknown event type "Nope"/],
      [`/api/events?from=${S + 10}&to=${S}`, /must be after/],
      ['/api/bans?order=sideways', /"order"/],
      ['/api/activity?bucket=minute', /"bucket"/],
      ['/api/report?format=xml', /"format"/],
      ['/api/report?client=0xnope', /"client"/],
    ]
    for (const [path, message] of cases) {
      const r = await get(path)
      assert.equal(r.status, 400, path)
      assert.equal(r.body.error.code, 'bad_request', path)
      assert.match(r.body.error.message, message, path)
    }
  })

  test('unknown API paths are 404 JSON; only GET and HEAD', async () => {
    for (const path of ['/api', '/api/nope', '/api/status/extra', '/api/clients/a/b']) {
      const r = await get(path)
      assert.equal(r.status, 404, path)
      assert.equal(r.body.error.code, 'not_found')
    }
    const post = await get('/api/status', { method: 'POST', body: '{}' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.get('allow'), 'GET, HEAD')
    assert.equal(post.body.error.code, 'method_not_allowed')
    const head = await fetch(`${web.address}/api/status`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
  })

  test('CORS only for configured origins', async () => {
    const ok = await get('/api/status', { headers: { origin: 'http://ui.example' } })
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://ui.example')
    const no = await get('/api/status', { headers: { origin: 'http://evil.example' } })
    assert.equal(no.status, 200)
    assert.equal(no.headers.get('access-control-allow-origin'), null)
    const pre = await fetch(`${web.address}/api/topics`, { method: 'OPTIONS', headers: { origin: 'http://ui.example', 'access-control-request-method': 'GET' } })
    assert.equal(pre.status, 204)
    assert.match(pre.headers.get('access-control-allow-methods')!, /GET/)
    const preBad = await fetch(`${web.address}/api/topics`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } })
    assert.equal(preBad.status, 405)
  })

  test('static files with an SPA fallback; a missing build says how to build it', async () => {
    const root = await get('/')
    assert.equal(root.status, 200)
    assert.match(root.text, /FlyTrap UI/)
    const route = await get('/topics/plant%2Fvalve')
    assert.equal(route.status, 200)
    assert.match(route.text, /FlyTrap UI/)
    const asset = await get('/assets/app-123.js')
    assert.match(asset.headers.get('content-type')!, /javascript/)
    assert.match(asset.headers.get('cache-control')!, /immutable/)
    assert.equal((await get('/assets/missing.js')).status, 404)
    assert.equal((await get('/..%2F..%2Fetc%2Fpasswd')).status, 404)
    const none = await get('/', {}, bare.address)
    assert.equal(none.status, 200)
    assert.match(none.text, /not built.*npm run build:web/s)
    assert.equal((await get('/api/topics', {}, bare.address)).body.topics.length, 2)
  })

  test('/openapi.json parses, is OpenAPI 3.1 and lists every path; docs/openapi.json is the same document', async () => {
    const { status, body } = await get('/openapi.json')
    assert.equal(status, 200)
    assert.equal(body.openapi, '3.1.0')
    assert.deepEqual(Object.keys(body.paths).sort(), [
      '/api/activity', '/api/anchors', '/api/bans', '/api/clients/{address}', '/api/denied', '/api/events', '/api/evidence', '/api/report', '/api/rpc', '/api/sensitive', '/api/status', '/api/topics', '/api/topics/{name}', '/api/traffic', '/openapi.json',
    ])
    for (const s of ['Event', 'Topic', 'Member', 'Anchor', 'Error']) assert.ok(body.components.schemas[s], s)
    // Every $ref resolves.
    const refs = [...JSON.stringify(body).matchAll(/"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]!)
    assert.ok(refs.length > 10)
    for (const r of refs) assert.ok(body.components.schemas[r], r)
    const docs = JSON.parse(readFileSync(new URL('../../../docs/openapi.json', import.meta.url), 'utf8'))
    assert.deepEqual(docs, openApiDocument(), 'docs/openapi.json is stale: regenerate it from src/lib/web/openapi.ts')
  })
})

describe('the read-only JSON-RPC relay (POST /api/rpc)', () => {
  const post = (body: unknown, base = web.address) =>
    get('/api/rpc', { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) }, base)

  test('reads pass through, in one call or a batch, with their ids', async () => {
    const one = await post({ jsonrpc: '2.0', id: 7, method: 'eth_chainId', params: [] })
    assert.equal(one.status, 200)
    assert.deepEqual(one.body, { jsonrpc: '2.0', id: 7, result: `0x${fx.chainId.toString(16)}` })
    const head = await fx.provider.getBlockNumber()
    const batch = await post([
      { jsonrpc: '2.0', id: 'a', method: 'eth_blockNumber', params: [] },
      { jsonrpc: '2.0', id: 'b', method: 'eth_getCode', params: [fx.address, 'latest'] },
      { jsonrpc: '2.0', id: 'c', method: 'eth_getBlockByNumber', params: ['0x999999', false] },
    ])
    assert.equal(batch.body.length, 3)
    assert.ok(Number(BigInt(batch.body[0].result)) >= head)
    assert.equal(batch.body[0].id, 'a')
    assert.ok(batch.body[1].result.length > 1000, 'the contract code')
    assert.equal(batch.body[2].result, null, 'a block that does not exist is null, as the node says')
  })

  test('an attacker cannot write, sign, mine or reconfigure the node through it', async () => {
    const before = await fx.provider.getBlockNumber()
    const [from] = (await rawRpc(fx.provider)('eth_accounts', [])) as string[]
    const attempts = [
      { method: 'eth_sendTransaction', params: [{ from, to: from, value: '0x1' }] },
      { method: 'eth_sendRawTransaction', params: ['0x02'] },
      { method: 'eth_sign', params: [from, '0x00'] },
      { method: 'personal_sign', params: ['0x00', from] },
      { method: 'eth_accounts', params: [] },
      { method: 'evm_mine', params: [] },
      { method: 'anvil_mine', params: [] },
      { method: 'anvil_setBalance', params: [from, '0x0'] },
      { method: 'evm_increaseTime', params: [1000] },
      { method: 'debug_traceTransaction', params: ['0x' + '00'.repeat(32)] },
    ]
    const out = await post(attempts.map((a, i) => ({ jsonrpc: '2.0', id: i, ...a })))
    assert.equal(out.status, 200)
    for (const [i, r] of (out.body as Json[]).entries()) {
      assert.equal(r.id, i)
      assert.equal(r.error?.code, -32601, `${attempts[i]!.method} is refused`)
      assert.equal(r.result, undefined)
    }
    assert.equal(await fx.provider.getBlockNumber(), before, 'nothing was mined')
  })

  test('malformed requests get JSON-RPC errors; only POST; bounded batches and bodies; absent without a node', async () => {
    assert.equal((await post('{not json')).body.error.code, -32700)
    assert.equal((await post({ id: 1 })).body.error.code, -32600)
    assert.equal((await post({ id: 1, method: 'eth_getLogs', params: {} })).body.error.code, -32602)
    assert.equal((await post([])).body.error.code, -32600)
    const many = Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_chainId', params: [] }))
    assert.match((await post(many)).body.error.message, /at most 100/)
    const huge = await post({ jsonrpc: '2.0', id: 1, method: 'eth_call', params: [{ data: '0x' + 'ab'.repeat(200_000) }] })
    assert.equal(huge.status, 413)
    const got = await get('/api/rpc')
    assert.equal(got.status, 405)
    assert.equal(got.headers.get('allow'), 'POST')
    assert.equal((await post({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }, bare.address)).status, 404)
    // node errors come back as the node's errors
    const bad = await post({ jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['not-a-block', false] })
    assert.ok(bad.body.error && typeof bad.body.error.message === 'string')
  })

  test('still GET-only everywhere else', async () => {
    const r = await get('/api/status', { method: 'POST', body: '{}' })
    assert.equal(r.status, 405)
  })
})

describe('the index', () => {
  test('answers without touching the chain', async () => {
    const { provider } = await connect(fx.rpcUrl)
    const own = await ChainIndex.create({ client: new FlyTrapClient(fx.address, provider), deployBlock: fx.deployBlock, pollIntervalMs: 0 })
    const srv = await startWebServer({ index: own, port: 0, host: '127.0.0.1' })
    let calls = 0
    const p = provider as unknown as { send: (...a: unknown[]) => Promise<unknown> }
    p.send = async () => {
      calls++
      throw new Error('no chain access per request')
    }
    try {
      for (const path of ['/api/status', '/api/topics', '/api/topics/plant%2Fvalve', `/api/clients/${BOB}`, '/api/events', '/api/bans', '/api/denied', '/api/sensitive', '/api/anchors', '/api/activity']) {
        assert.equal((await get(path, {}, srv.address)).status, 200, path)
      }
      assert.equal(calls, 0)
      assert.equal((await get('/api/anchors', {}, srv.address)).body.anchors[0].status, 'unchecked', 'no journal: unchecked')
    } finally {
      own.close()
      await srv.close()
      provider.destroy()
    }
  })

  test('keeps in step with new blocks (topics view and members refreshed)', async () => {
    await fx.as(2).setCountries('plant/valve', encodeCountries(['FR']), 'geo-fence')
    await fx.as(2).allow('plant/#', BOB, 1, 0, 'late grant')
    const deadline = Date.now() + 10_000
    let topics: { name: string; countries: string[]; members: number }[] = []
    while (Date.now() < deadline) {
      topics = (await get('/api/topics')).body.topics
      if (topics.find((t) => t.name === 'plant/#')?.members === 2) break
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.deepEqual(topics.find((t) => t.name === 'plant/valve')?.countries, ['FR'])
    assert.equal(topics.find((t) => t.name === 'plant/#')?.members, 2)
    const last = (await get('/api/events?limit=2')).body.events
    assert.deepEqual(last.map((e: IndexEvent) => [e.type, e.actor, e.reason]), [
      ['Granted', ALICE, 'late grant'],
      ['TopicCountriesChanged', ALICE, 'geo-fence'],
    ])
    assert.equal((await get('/api/status')).body.events, 17)
  })
})
