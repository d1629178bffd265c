/**
 * `audit report` answers who / why / when / what (issue 11, items 3 and 4), end to end: real anvil, real
 * mosquitto, `flytrap proxy start --journal-deliveries all` as its own process with a 2 s period and a
 * registered reporter. The grants are made before the report's --from (so the "why" must come from the
 * policy history), a device presents a credential claiming another device's address with a bad signature,
 * the report's --to is the exact end of the period whose summary was mined after it, one journal entry is
 * then edited on disk; the --subject and art30 views are read back as JSON and CSV.
 * Needs dist/ (npx tsc -p tsconfig.json). The tests in this file run in order.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import type { MqttClient } from 'mqtt'
import { signCredential, toUserProperties, UserProperty } from '../../src/lib/auth/index.js'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { readRecords } from '../../src/lib/audit/journal-files.js'
import type { AuditReport, ReportRow } from '../../src/lib/audit/report.js'
import type { Art30View, SubjectView } from '../../src/lib/audit/views.js'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { runCli, spawnCli, tempCwd, type CliRun, type LongCli } from '../helpers/cli.js'
import { connectClient, connectWhenReady, inbox, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

const PERIOD_MS = 2_000
const K = ANVIL_DEV_KEYS
const addr = (i: number) => new Wallet(K[i]!).address
const OWNER = addr(0)
const VALVE = addr(1) // publishes on plant/valve
const ROOM = addr(2) // receives on plant/valve
const REPORTER = addr(5)
const MALLORY = 6 // claims VALVE's address with her own signature
const periodOf = (ms: number) => Math.floor(ms / PERIOD_MS)

describe('audit report: who, why, when, what (proxy CLI, anvil, mosquitto)', () => {
  let chain: ChainFixture
  let mosquitto: MosquittoHandle
  let cwd: string
  let dataDir: string
  let proxy: LongCli | undefined
  const clients = new Set<MqttClient>()
  let from = ''
  let to = ''
  let grantTx = { valve: '', room: '' }

  const conn = () => ['--rpc', chain.rpcUrl, '--contract', chain.address, '--from-block', String(chain.deployBlock)]
  const cleanEnv = (): Record<string, string | undefined> => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('FLYTRAP_')).map((k) => [k, undefined]))
  const flytrap = (args: string[]): Promise<CliRun> => runCli(args, { cwd, env: cleanEnv(), timeoutMs: 60_000 })
  const report = async (extra: string[]) => {
    const r = await flytrap(['audit', 'report', '--from', from, '--to', to, '--data-dir', dataDir, ...conn(), ...extra])
    assert.equal(r.code, 0, r.stderr)
    return r
  }
  const reportJson = async (extra: string[] = []) => JSON.parse((await report([...extra, '--format', 'json'])).stdout) as AuditReport

  before(async () => {
    chain = await chainFixture()
    mosquitto = await startMosquitto()
    cwd = tempCwd('flytrap-audit-report-e2e-')
    dataDir = join(cwd, 'proxy-data')
    const owner = chain.as(0)
    await chain.as(0).addReporter(REPORTER, 'proxy eu-1')
    await owner.addTopic(topicArgs('plant/valve', { reason: 'valve telemetry' }))
    const g1 = await owner.allow('plant/valve', VALVE, 1, 0, 'valve controller')
    const g2 = await owner.allow('plant/valve', ROOM, 2, 0, 'control room')
    grantTx = { valve: g1.hash, room: g2.hash }
    // The report starts after the grants: their "why" must come from the policy history.
    await sleep(1_100)
    from = new Date(Date.now()).toISOString()
  })

  after(async () => {
    for (const c of clients) c.end(true)
    await proxy?.stop('SIGKILL', 5_000)
    await mosquitto?.stop()
    await chain?.close()
    if (cwd) rmSync(cwd, { recursive: true, force: true })
  })

  test('traffic with --journal-deliveries all: a non-sensitive delivery is journaled; an impersonation is journaled as unverified', async () => {
    proxy = spawnCli(
      [
        'proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, ...conn(),
        '--poll-interval', '200ms', '--period', '2s', '--data-dir', dataDir, '--reporter-key', K[5]!,
        '--journal-deliveries', 'all', '--ban-threshold', '100', '--shutdown-grace', '1s', '--auth-workers', '0', '--log-level', 'warn',
      ],
      { cwd },
    )
    const first = await proxy.firstJsonLine<{ listening: { port: number }[] }>(30_000)
    const url = `mqtt://127.0.0.1:${first.listening[0]!.port}`
    const connect = async (key: number, clientId: string) => {
      const c = await connectWhenReady({ key: K[key]!, url, clientId }, chain)
      clients.add(c)
      return c
    }
    const valve = await connect(1, 'valve-ctl')
    const room = await connect(2, 'control-room')
    const got = inbox(room)
    assert.deepEqual(await subscribeCodes(room, 'plant/valve'), [1])
    for (let i = 0; i < 3; i++) assert.equal(await publishCode(valve, 'plant/valve', `open ${i}`), 0)
    await waitFor(() => got.messages.length === 3, 15_000, 'the control room to get 3 messages')

    // Mallory claims VALVE's address, signing with her own key: a bad signature.
    const forged = toUserProperties(signCredential({ signer: K[MALLORY]!, chainId: BigInt(chain.chainId), contract: chain.address, clientId: 'valve-ctl', expiresAt: Math.floor(Date.now() / 1000) + 600 }))
    forged[UserProperty.address] = VALVE
    const refusedAt = Date.now()
    await assert.rejects(
      connectClient({ key: K[MALLORY]!, url, clientId: 'valve-ctl', transport: 'none', extra: { connectTimeout: 10_000, properties: { userProperties: forged } } }, chain),
      (err: { code?: unknown }) => typeof err.code === 'number' && err.code >= 0x80,
    )
    // --to: the exact end of the refusal's period; its denied summary is mined after it.
    to = new Date((periodOf(refusedAt) + 1) * PERIOD_MS).toISOString()
    // Allowed deliveries on a non-sensitive topic are coalesced per receiver, topic and second and written
    // once that second is over (nobody waits on them): read the journal until they are there.
    const es: Record<string, unknown>[] = []
    const deliveredCount = () => es.filter((e) => e.kind === 'deliver' && e.outcome === 'allow' && e.topic === 'plant/valve' && e.address === ROOM).reduce((n, e) => n + Number(e.count ?? 1), 0)
    await waitFor(
      async () => {
        es.length = 0
        for await (const { record } of readRecords(dataDir)) if (!record.redacted) es.push(record.entry as unknown as Record<string, unknown>)
        return deliveredCount() >= 3 && es.some((e) => e.kind === 'connect' && e.outcome === 'deny' && e.address === VALVE)
      },
      15_000,
      'the coalesced deliveries and the refused connect in the journal',
    ).catch(() => {})
    assert.equal(deliveredCount(), 3, 'every delivery on the non-sensitive topic is journaled')
    const claim = es.find((e) => e.kind === 'connect' && e.outcome === 'deny' && e.address === VALVE)
    assert.ok(claim, 'the refused connect claiming VALVE')
    assert.equal(claim.reason, 'bad-signature')
    assert.equal(claim.unverified, true)

    // Wait for the anchors of every period with entries so far and the denied summary of the refusal's period.
    const periods = new Set(es.map((e) => periodOf(Number(e.t))))
    await waitFor(
      async () => {
        const logs = chain.as(0).parseLogs(await chain.provider.getLogs({ address: chain.address, fromBlock: chain.deployBlock, toBlock: 'latest' }))
        const anchored = new Set(logs.filter((e) => e.name === 'Anchored').map((e) => (Number(e.args[1]) * 1000) / PERIOD_MS))
        const denied = logs.some((e) => e.name === 'DeniedSummary' && Number(e.args[1]) * 1000 === periodOf(refusedAt) * PERIOD_MS)
        return denied && [...periods].every((k) => anchored.has(k))
      },
      30_000,
      'the anchors and the denied summary',
    )
    for (const c of clients) c.end(true)
    clients.clear()
    await proxy.stop('SIGTERM', 10_000)
    proxy = undefined
  })

  test('each access row carries the grant in force, made before --from; grantsAtFrom lists it', async () => {
    const rep = await reportJson()
    const rows = rep.rows
    const pub = rows.find((r) => r.source === 'journal' && r.event === 'publish' && r.client === VALVE)
    assert.ok(pub, 'the publish row')
    assert.ok(pub.grant, `the publish row cites its grant: ${JSON.stringify(pub)}`)
    assert.deepEqual([pub.grant.kind, pub.grant.rule, pub.grant.by, pub.grant.reason, pub.grant.until, pub.grant.event], ['grant', 'plant/valve', OWNER, 'valve controller', null, 'Granted'])
    assert.equal(pub.grant.tx, grantTx.valve)
    assert.ok(Date.parse(pub.grant.at) < Date.parse(from), 'the grant predates --from')
    const del = rows.find((r) => r.source === 'journal' && r.event === 'deliver' && r.client === ROOM)
    assert.ok(del?.grant, 'the delivery row cites its grant')
    assert.equal(del.grant.reason, 'control room')
    const sub = rows.find((r) => r.source === 'journal' && r.event === 'subscribe' && r.client === ROOM)
    assert.equal(sub?.grant?.reason, 'control room')
    assert.ok(!rows.some((r) => r.source === 'chain' && r.event === 'Granted'), 'the grants themselves are before the range')
    assert.deepEqual(
      rep.grantsAtFrom.map((g) => [g.client, g.role, g.reason, g.by]),
      [
        [VALVE, 'publish', 'valve controller', OWNER],
        [ROOM, 'subscribe', 'control room', OWNER],
      ],
    )
    // The sample row the closing note quotes: who (client), why (grant), when (time), what (event, topic), proven.
    console.log(`sample row: ${JSON.stringify(pub)}`)
    assert.equal(pub.proven, true)
  })

  test('a period summary at the --to boundary is present (selected by the interval it covers)', async () => {
    const rep = await reportJson()
    const connects = rep.rows.filter((r) => r.event === 'DeniedSummary' && r.topic === '$connect')
    assert.ok(connects.length >= 1, `the $connect summary of the last period: ${JSON.stringify(rep.rows.filter((r) => r.source === 'chain').map((r) => [r.event, r.topic, r.detail]))}`)
    assert.ok(connects.some((r) => r.detail?.includes(`, ${to.replace('.000Z', 'Z')})`)), 'its interval ends at --to')
  })

  test('an impersonation is unverified and kept apart from the claimed address’s own activity', async () => {
    const rep = await reportJson()
    const claim = rep.rows.find((r) => r.source === 'journal' && r.event === 'connect' && r.claimed === VALVE)
    assert.ok(claim, 'the claim row')
    assert.deepEqual([claim.verified, claim.client, claim.reason], [false, null, 'bad-signature'])
    const mine = await reportJson(['--client', VALVE])
    const own = mine.rows.filter((r) => r.client === VALVE)
    assert.ok(own.some((r) => r.event === 'connect' && r.verified === true), 'VALVE’s own connect')
    assert.ok(!own.some((r) => r.event === 'connect' && /^deny/.test(r.detail ?? '')), 'no refused connect counted as VALVE’s own')
    assert.ok(mine.rows.some((r) => r.claimed === VALVE && r.verified === false), 'the claim is shown, marked')
    const table = (await report(['--client', VALVE])).stdout
    assert.match(table, /claims 0x7099…79C8 \(unverified\)/)
  })

  test('--subject: everything held about one address (connects with IP and client id, accesses with grants, chain rows, claims by others apart), JSON and CSV', async () => {
    const v = JSON.parse((await report(['--subject', VALVE, '--format', 'json'])).stdout) as SubjectView
    assert.equal(v.view, 'subject')
    assert.equal(v.subject, VALVE)
    assert.ok(v.connects.some((c) => c.outcome === 'allow' && c.clientId === 'valve-ctl' && c.ip === '127.0.0.1'), JSON.stringify(v.connects))
    assert.ok(!v.connects.some((c) => c.outcome === 'deny'), 'the impersonation is not the subject’s connect')
    assert.equal(v.claimsByOthers.length, 1)
    assert.equal(v.claimsByOthers[0]!.reason, 'bad-signature')
    const pubs = v.accesses.filter((a) => a.kind === 'publish' && a.outcome === 'allow')
    assert.equal(pubs.reduce((n, a) => n + a.count, 0), 3)
    assert.ok(pubs.every((a) => a.grant?.reason === 'valve controller'))
    assert.deepEqual(v.grantsAtFrom.map((g) => g.reason), ['valve controller'])
    const out = join(cwd, 'subject.csv')
    await report(['--subject', VALVE, '--format', 'csv', '--out', out])
    const csv = readFileSync(out, 'utf8')
    assert.ok(csv.startsWith('record,time,seq,kind,topic,outcome,reason,count,clientId,ip,country,grantTx,grantBy,grantReason,until,proven\r\n'))
    assert.match(csv, /\r\nconnect,[^\r]*,valve-ctl,127\.0\.0\.1,/)
    assert.match(csv, /unverified claim \(not the subject\)/)
  })

  test('--format art30: purposes, categories of recipients, recipients, transfers by country, retention; JSON and CSV', async () => {
    const v = JSON.parse((await report(['--format', 'art30'])).stdout) as Art30View
    assert.equal(v.view, 'art30')
    assert.equal(v.retention.anchoringPeriodSec, 2)
    const t = v.topics.find((x) => x.topic === 'plant/valve')
    assert.ok(t, JSON.stringify(v.topics))
    assert.deepEqual([...t.purposes].sort(), ['control room', 'valve controller'])
    assert.ok(t.recipientCategories.includes('subscribers granted by the owner'))
    assert.equal(t.recipientsAllowed, 1)
    assert.equal(t.recipientsSeen, 1)
    assert.equal(t.publishersSeen, 1)
    assert.deepEqual(t.transfers, { unknown: 1 }) // 127.0.0.1 has no GeoIP country
    const csv = (await report(['--format', 'art30-csv'])).stdout
    assert.ok(csv.startsWith('topic,owner,sensitive,purposes,recipientCategories,recipientsAllowed,recipientsSeen,publishersSeen,transfers,anchoringPeriodSec\r\n'))
    assert.match(csv, /\r\nplant\/valve,/)
  })

  test('proven is each entry’s own proof: an entry edited on disk is not proven, its untouched neighbours still are', async () => {
    const before = await reportJson()
    const journalRows = before.rows.filter((r) => r.source === 'journal')
    assert.ok(journalRows.length > 3 && journalRows.every((r) => r.proven === true), JSON.stringify(journalRows.map((r) => [r.event, r.proven])))
    // Rows are told apart by their entry number (in `detail`, and `seq`).
    const seqOf = (r: ReportRow) => Number(/entry #(\d+)/.exec(r.detail ?? '')?.[1])
    const target = before.rows.find((r) => r.source === 'journal' && r.event === 'publish' && r.client === VALVE)!
    const neighbours = journalRows.filter((r) => seqOf(r) !== seqOf(target) && periodOf(Date.parse(r.time)) === periodOf(Date.parse(target.time)))
    assert.ok(neighbours.length > 0, 'entries in the same period')
    const seg = (await import('../../src/lib/audit/journal-files.js')).listSegments
    const file = (await seg(dataDir)).at(-1)!.path
    const original = readFileSync(file, 'utf8')
    try {
      const lines = original.split('\n').map((l) => {
        if (!l) return l
        const o = JSON.parse(l) as Record<string, unknown>
        return o.seq === seqOf(target) ? JSON.stringify({ ...o, topic: 'plant/other' }) : l
      })
      writeFileSync(file, lines.join('\n'))
      const after = await reportJson()
      const edited = after.rows.find((r) => seqOf(r) === seqOf(target))!
      assert.equal(edited.topic, 'plant/other')
      assert.equal(edited.proven, false, 'the edited entry')
      for (const n of neighbours) assert.equal(after.rows.find((r) => seqOf(r) === seqOf(n))?.proven, true, `neighbour #${seqOf(n)} (${n.event})`)
    } finally {
      writeFileSync(file, original)
    }
  })
})
