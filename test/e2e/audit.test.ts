/**
 * The audit trail end to end (issue 4): real anvil, real mosquitto, and `flytrap proxy start` as its own
 * process with a journal (--data-dir), a 2 s anchoring/reporting period and a registered reporter (anvil
 * dev key #5). MQTT.js clients drive allowed and refused traffic; then the chain is checked (anchors,
 * sensitive-topic reports, denied summaries, bans: one transaction per period and kind), and the audit
 * commands run as a user would: `audit verify` (intact and tampered), `audit report` (json, csv, table,
 * --topic, --client), `audit forget`, and finally kill -9 under load followed by a restart.
 * Needs dist/ (npx tsc -p tsconfig.json). The tests in this file depend on each other and run in order.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getAddress, parseEther, Wallet, zeroPadValue, type JsonRpcProvider } from 'ethers'
import type { MqttClient } from 'mqtt'
import { argsOf } from '../../src/lib/chain/client.js'
import { topicId } from '../../src/lib/chain/codec.js'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { journalDir, listSegments, rangeTally, readRecords } from '../../src/lib/audit/journal-files.js'
import { membersRecords } from '../../src/lib/audit/sensitive-members.js'
import type { JournalEntry, JournalRecord } from '../../src/lib/audit/entry.js'
import { CSV_COLUMNS, csvFields, type AuditReport, type ReportRow } from '../../src/lib/audit/report.js'
import type { VerifyReport } from '../../src/lib/audit/verify.js'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { runCli, spawnCli, tempCwd, type CliRun, type LongCli } from '../helpers/cli.js'
import { connectClient, connectWhenReady, inbox, publishCode, subscribeCodes, type ConnectOptions } from '../helpers/mqtt.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { topicArgs } from '../helpers/topics.js'

const PERIOD_MS = 2_000
const K = ANVIL_DEV_KEYS
const addr = (i: number) => new Wallet(K[i]!).address
const OWNER = addr(0)
const VALVE = addr(1) // publisher on plant/valve and ward/vitals
const NURSE = addr(2) // receiver on ward/vitals
const ARCHIVE = addr(3) // receiver on ward/vitals, paid to join market/prices
const ROGUE = addr(4) // no grants: refused, then banned
const REPORTER = addr(5)
const periodOf = (ms: number) => Math.floor(ms / PERIOD_MS)
const padded = (a: string) => zeroPadValue(a.toLowerCase(), 32).toLowerCase()
const lc = (s: unknown) => String(s).toLowerCase()
/** oclif wraps error messages to the terminal width. */
const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ')

interface Ev {
  name: string
  a: Record<string, unknown>
  block: number
  tx: string
}

type Rec = { file: string; line: number; record: JournalRecord }
type Entry = JournalEntry & { count?: number }

async function mapSeq<T, R>(xs: readonly T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (const x of xs) out.push(await f(x))
  return out
}

/** A minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF records. Throws on anything else. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let i = 0
  while (i < text.length) {
    let field = ''
    if (text[i] === '"') {
      i++
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field')
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"'
            i += 2
            continue
          }
          i++
          break
        }
        field += text[i++]
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`bare quote in an unquoted field at ${i}`)
        field += text[i++]
      }
    }
    row.push(field)
    if (text[i] === ',') {
      i++
      continue
    }
    if (text[i] === '\n') throw new Error(`LF without CR at ${i}`)
    if (text[i] === '\r') {
      if (text[i + 1] !== '\n') throw new Error(`CR without LF at ${i}`)
      i += 2
    }
    rows.push(row)
    row = []
  }
  return rows
}

describe('audit trail end to end (proxy CLI, anvil, mosquitto)', () => {
  let chain: ChainFixture
  let mosquitto: MosquittoHandle
  let cwd: string
  let dataDir: string
  let rpc: JsonRpcProvider
  const clients = new Set<MqttClient>()
  const procs = new Set<LongCli>()
  let t0 = 0

  const conn = () => ['--rpc', chain.rpcUrl, '--contract', chain.address]
  const chainArgs = () => [...conn(), '--from-block', String(chain.deployBlock)]
  const cleanEnv = (): Record<string, string | undefined> => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('FLYTRAP_')).map((k) => [k, undefined]))
  const flytrap = (args: string[]): Promise<CliRun> => runCli(args, { cwd, env: cleanEnv(), timeoutMs: 30_000 })

  async function events(): Promise<Ev[]> {
    const c = chain.as(0)
    const logs = await chain.provider.getLogs({ address: chain.address, fromBlock: chain.deployBlock, toBlock: 'latest' })
    return c.parseLogs(logs).map((e) => ({ name: e.name, a: argsOf(e), block: e.log.blockNumber, tx: e.log.transactionHash }))
  }

  async function journal(): Promise<Rec[]> {
    const out: Rec[] = []
    for await (const r of readRecords(dataDir)) out.push(r)
    return out
  }
  /**
   * What committed sensitive reports (counts + members root on chain) say about `who` in `role`, opened with
   * the journal's member records of their topic and period: null when a report's counts or root are not the
   * journal's (the chain and the journal must say the same).
   */
  async function memberCount(reports: Ev[], topic: string, who: string, role: 'publisher' | 'receiver'): Promise<number | null> {
    let n = 0
    for (const e of reports) {
      const s = (await rangeTally(dataDir, Number(e.a.fromTime) * 1000, Number(e.a.toTime) * 1000)).sensitive.get(topic)
      if (!s) return null
      const c = membersRecords(s)
      const same = c.membersRoot === lc(e.a.membersRoot) && [c.publishers, c.published, c.receivers, c.received].join() === [e.a.publishers, e.a.published, e.a.receivers, e.a.received].map(Number).join()
      if (!same) return null
      n += c.records.find((r) => r.role === role && r.address === lc(who))?.count ?? 0
    }
    return n
  }
  const entries = (recs: Rec[]): Entry[] => recs.flatMap((r) => (r.record.redacted ? [] : [r.record.entry as Entry]))

  async function startProxy(): Promise<{ cli: LongCli; url: string; reporter: string }> {
    const args = [
      'proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, ...chainArgs(),
      '--poll-interval', '200ms', '--period', '2s', '--data-dir', dataDir, '--reporter-key', K[5]!,
      '--ban-threshold', '3', '--ban-window', '60s', '--ban-duration', '60s', '--ban-report-interval', '2s',
      '--shutdown-grace', '1s', '--auth-workers', '0', '--log-level', 'warn',
    ]
    const cli = spawnCli(args, { cwd })
    procs.add(cli)
    const first = await cli.firstJsonLine<{ listening: { port: number }[]; reporter: string | null; dataDir: string | null }>(30_000)
    assert.equal(first.dataDir, dataDir)
    return { cli, url: `mqtt://127.0.0.1:${first.listening[0]!.port}`, reporter: first.reporter ?? '' }
  }

  /** Connects through the proxy, retrying while it is still syncing its policy (fail closed). */
  async function connect(url: string, o: Omit<ConnectOptions, 'key'> & { key: number }): Promise<MqttClient> {
    const c = await connectWhenReady({ ...o, key: K[o.key]!, url }, chain)
    clients.add(c)
    return c
  }
  const endClients = () => {
    for (const c of clients) c.end(true)
    clients.clear()
  }

  before(async () => {
    t0 = Date.now() - 1_000 // the report's range starts before the setup transactions
    chain = await chainFixture()
    rpc = chain.rpc
    mosquitto = await startMosquitto()
    cwd = tempCwd('flytrap-audit-e2e-')
    dataDir = join(cwd, 'proxy-data')
    const owner = chain.as(0)
    // Through the CLI, as an operator would: the reporter, the sensitive topic, one grant.
    for (const args of [
      ['contract', 'reporter', 'add', REPORTER, '--reason', 'proxy eu-1'],
      ['topic', 'add', 'ward/vitals', '--sensitive', '--reason', 'patient data'],
      ['topic', 'allow', 'ward/vitals', VALVE, '--pub', '--reason', 'bedside monitor 7'],
    ]) {
      const r = await flytrap([...args, ...conn(), '--key', K[0]!])
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    }
    await owner.allow('ward/vitals', NURSE, 2, 0, 'nurse station')
    await owner.allow('ward/vitals', ARCHIVE, 2, 0, 'medical records')
    await owner.addTopic(topicArgs('plant/valve', { reason: 'valve telemetry' }))
    await owner.allow('plant/valve', VALVE, 1, 0, 'valve controller')
    await owner.addTopic(topicArgs('fleet/#', { reason: 'fleet telemetry' }))
    for (const i of [1, 2, 3]) await owner.allow('fleet/#', addr(i), 1, 0, `fleet unit ${i}`)
    await owner.addTopic(topicArgs('market/prices', { open: true, subFee: parseEther('0.01'), reason: 'price feed' }))
    await chain.as(3).join('market/prices', 2, 1, parseEther('0.01'))
  })

  after(async () => {
    endClients()
    for (const p of procs) await p.stop('SIGKILL', 5_000)
    await rpc?.send('evm_setAutomine', [true]).catch(() => undefined)
    await mosquitto?.stop()
    await chain?.close()
    if (cwd) rmSync(cwd, { recursive: true, force: true })
  })

  // Shared between the tests (they run in order).
  let refusedConnects = 0
  let anchoredPeriodsA = new Set<number>()

  test('traffic through the proxy: anchors, a sensitive report, a denied summary and a ban from the reporter, one transaction per period and kind', async (t) => {
    const started = Date.now()
    const proxy = await startProxy()
    t.after(async () => {
      endClients()
      await proxy.cli.stop('SIGTERM', 10_000)
      procs.delete(proxy.cli)
    })
    assert.equal(proxy.reporter, REPORTER)

    const valve = await connect(proxy.url, { key: 1, clientId: 'valve-ctl' })
    const nurse = await connect(proxy.url, { key: 2, clientId: 'nurse-station' })
    const archive = await connect(proxy.url, { key: 3, clientId: 'archive' })
    const inNurse = inbox(nurse)
    const inArchive = inbox(archive)
    assert.deepEqual(await subscribeCodes(nurse, 'ward/vitals'), [1])
    assert.deepEqual(await subscribeCodes(archive, ['ward/vitals', 'market/prices']), [1, 1])
    const subscribedAt = Date.now()

    // Refused connects (two: the IP's threshold is three): an expired credential, no credential at all.
    const refused = (o: Omit<ConnectOptions, 'key'>) =>
      assert.rejects(connectClient({ key: K[6]!, url: proxy.url, ...o, extra: { connectTimeout: 20_000 } }, chain), (err: { code?: unknown }) => typeof err.code === 'number' && err.code >= 0x80)
    await refused({ clientId: 'stale-9', expiresIn: -60 })
    await refused({ clientId: 'anonymous', transport: 'none' })

    // A device without grants: a refused subscribe and two refused publishes make three failures: banned.
    const rogue = await connect(proxy.url, { key: 4, clientId: 'rogue-7' })
    const rogueClosed = new Promise<void>((r) => rogue.once('close', () => r()))
    assert.notEqual((await subscribeCodes(rogue, 'ward/vitals'))[0], 1)
    assert.notEqual(await publishCode(rogue, 'plant/valve', 'x'), 0)
    await publishCode(rogue, 'plant/valve', 'y').catch(() => -1) // the ban may close the session before the PUBACK
    await Promise.race([rogueClosed, sleep(5_000).then(() => assert.fail('the banned session was not closed'))])

    // Fifty publishes to one topic: the journal coalesces them.
    const codes = await Promise.all(Array.from({ length: 50 }, (_, i) => publishCode(valve, 'plant/valve', `open ${i}`)))
    assert.deepEqual(new Set(codes), new Set([0]))

    // Twenty messages on the sensitive topic, in a later period than the subscriptions: receivers are counted by deliveries.
    await sleep(PERIOD_MS - (Date.now() % PERIOD_MS) + 30)
    assert.ok(periodOf(Date.now()) > periodOf(subscribedAt))
    const burstPeriod = periodOf(Date.now())
    const sens = await Promise.all(Array.from({ length: 20 }, (_, i) => publishCode(valve, 'ward/vitals', `pulse ${i}`)))
    assert.deepEqual(new Set(sens), new Set([0]))
    await waitFor(() => inNurse.messages.filter((m) => m.topic === 'ward/vitals').length === 20 && inArchive.messages.filter((m) => m.topic === 'ward/vitals').length === 20, 5_000, 'both receivers to get 20 messages')

    // Every acknowledged decision is in the journal already (strict sync); these periods must all get anchored.
    await sleep(300)
    const snapshot = await journal()
    const periods = new Set(snapshot.map((r) => periodOf(r.record.t)))

    const topicVitals = lc(topicId('ward/vitals'))
    const sum = (evs: Ev[], who: string, role: 'publisher' | 'receiver') => memberCount(evs, 'ward/vitals', who, role)
    const deniedOf = (evs: Ev[], name: string) =>
      evs.filter((e) => e.name === 'DeniedSummary').reduce((n, e) => n + (e.a.topics as string[]).reduce((m, x, i) => m + (lc(x) === lc(topicId(name)) ? Number((e.a.counts as bigint[])[i]) : 0), 0), 0)
    let evs: Ev[] = []
    const ready = async () => {
      const anchored = new Set(evs.filter((e) => e.name === 'Anchored').map((e) => Number(e.a.fromTime) * 1000 / PERIOD_MS))
      const sensitive = evs.filter((e) => e.name === 'SensitiveReport' && lc(e.a.topic) === topicVitals)
      return (
        [...periods].every((k) => anchored.has(k)) &&
        (await sum(sensitive, VALVE, 'publisher')) === 20 &&
        (await sum(sensitive, NURSE, 'receiver')) === 20 &&
        (await sum(sensitive, ARCHIVE, 'receiver')) === 20 &&
        deniedOf(evs, '$connect') === snapshot.filter((r) => !r.record.redacted && r.record.entry.kind === 'connect' && r.record.entry.outcome === 'deny').length &&
        evs.some((e) => e.name === 'Banned' && lc(e.a.subject) === padded(ROGUE))
      )
    }
    try {
      await waitFor(async () => ((evs = await events()), await ready()), 15_000, 'anchors, the sensitive report, the denied summary and the ban on chain')
    } catch (err) {
      const s = evs.filter((e) => ['Anchored', 'SensitiveReport', 'DeniedSummary', 'Banned'].includes(e.name)).map((e) => `${e.name} ${JSON.stringify(e.a, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`)
      throw new Error(`${(err as Error).message}\nperiods with entries: ${[...periods].join(' ')}\n${s.join('\n')}\nproxy stderr:\n${proxy.cli.stderr().slice(-3000)}`, { cause: err })
    }
    const tChain = Date.now()

    // Everything reporter-only comes from the registered reporter.
    const reporterOnly = evs.filter((e) => ['Anchored', 'SensitiveReport', 'DeniedSummary', 'Banned'].includes(e.name))
    for (const e of reporterOnly) assert.equal(getAddress(String(e.a.reporter)), REPORTER, `${e.name} from ${String(e.a.reporter)}`)

    // One transaction per period and kind (and per topic for sensitive reports), each covering exactly one period.
    const perPeriod = (name: string, key: (e: Ev) => string) => {
      const m = new Map<string, Set<string>>()
      for (const e of evs.filter((x) => x.name === name)) m.set(key(e), (m.get(key(e)) ?? new Set()).add(e.tx))
      return m
    }
    const anchors = evs.filter((e) => e.name === 'Anchored')
    for (const [k, txs] of perPeriod('Anchored', (e) => String(e.a.fromTime))) assert.equal(txs.size, 1, `anchors for the period from ${k}`)
    for (const [k, txs] of perPeriod('DeniedSummary', (e) => String(e.a.fromTime))) assert.equal(txs.size, 1, `denied summaries for the period from ${k}`)
    for (const [k, txs] of perPeriod('SensitiveReport', (e) => `${lc(e.a.topic)}@${e.a.fromTime}`)) assert.equal(txs.size, 1, `sensitive reports ${k}`)
    for (const e of [...anchors, ...evs.filter((x) => x.name === 'SensitiveReport' || x.name === 'DeniedSummary')]) {
      assert.equal(Number(e.a.fromTime) % (PERIOD_MS / 1000), 0, `${e.name} starts on a period boundary`)
      assert.equal(Number(e.a.toTime) - Number(e.a.fromTime), PERIOD_MS / 1000, `${e.name} covers one period`)
    }
    assert.equal(new Set(anchors.map((e) => e.tx)).size, anchors.length)
    assert.equal(evs.filter((e) => e.name === 'Banned' && lc(e.a.subject) === padded(ROGUE)).length, 1, 'the ban is recorded once')
    assert.equal(deniedOf(evs, 'ward/vitals'), 1, 'the refused subscribe')
    assert.equal(deniedOf(evs, 'plant/valve'), 2, 'the refused publishes')

    // The sensitive report of the burst's period counts the receivers although they subscribed periods earlier;
    // on chain only counts and the members root, whose records (in the journal) name them.
    const burst = evs.find((e) => e.name === 'SensitiveReport' && lc(e.a.topic) === topicVitals && Number(e.a.fromTime) === (burstPeriod * PERIOD_MS) / 1000)
    assert.ok(burst, 'a sensitive report for the period of the burst')
    assert.deepEqual([Number(burst.a.publishers), Number(burst.a.receivers), Number(burst.a.received)], [1, 2, 2 * Number(burst.a.published)])
    const burstMembers = membersRecords((await rangeTally(dataDir, Number(burst.a.fromTime) * 1000, Number(burst.a.toTime) * 1000)).sensitive.get('ward/vitals')!)
    assert.equal(burstMembers.membersRoot, lc(burst.a.membersRoot))
    assert.deepEqual(burstMembers.records.map((r) => [r.role, getAddress(r.address)]), [['publisher', VALVE], ...[NURSE, ARCHIVE].sort((x, y) => (lc(x) < lc(y) ? -1 : 1)).map((a) => ['receiver', a])])

    // Anchored counts are the journal's counts for those (closed) periods.
    const now = await journal()
    for (const a of anchors) {
      const k = (Number(a.a.fromTime) * 1000) / PERIOD_MS
      assert.equal(Number(a.a.count), now.filter((r) => periodOf(r.record.t) === k).length, `entries anchored for period ${k}`)
    }
    anchoredPeriodsA = new Set(anchors.map((a) => (Number(a.a.fromTime) * 1000) / PERIOD_MS))

    // The journal: coalesced publishes and deliveries (count), refusals, the ban and the kick.
    const es = entries(now)
    const valvePubs = es.filter((e) => e.kind === 'publish' && e.outcome === 'allow' && e.topic === 'plant/valve' && e.clientId === 'valve-ctl')
    assert.equal(valvePubs.reduce((n, e) => n + (e.count ?? 1), 0), 50)
    assert.ok(valvePubs.length < 50 && valvePubs.some((e) => (e.count ?? 1) > 1), `50 publishes coalesced into ${valvePubs.length} entries`)
    for (const who of ['nurse-station', 'archive']) {
      const d = es.filter((e) => e.kind === 'deliver' && e.outcome === 'allow' && e.topic === 'ward/vitals' && e.clientId === who)
      assert.equal(d.reduce((n, e) => n + (e.count ?? 1), 0), 20, `deliveries to ${who}`)
      assert.ok(d.length < 20, `deliveries to ${who} coalesced into ${d.length} entries`)
    }
    // Refused connects: the two above, plus any refused while the proxy was still syncing its policy (a loaded machine).
    const deniedConnects = es.filter((e) => e.kind === 'connect' && e.outcome === 'deny')
    assert.deepEqual(deniedConnects.filter((e) => e.reason !== 'not-synced').map((e) => e.clientId), ['stale-9', 'anonymous'])
    refusedConnects = deniedConnects.length
    assert.ok(es.some((e) => e.kind === 'ban' && e.address === ROGUE))
    assert.ok(es.some((e) => e.kind === 'disconnect' && e.outcome === 'deny' && e.reason === 'banned' && e.clientId === 'rogue-7'))
    assert.ok(es.some((e) => e.kind === 'subscribe' && e.outcome === 'deny' && e.clientId === 'rogue-7' && e.topic === 'ward/vitals'))

    // Gas per reporter write, as mined.
    const gas = async (name: string) => {
      const e = evs.find((x) => x.name === name)
      return e ? String((await chain.provider.getTransactionReceipt(e.tx))!.gasUsed) : '-'
    }
    t.diagnostic(`gas: anchor ${await gas('Anchored')}, sensitive report (1 + 2 addresses) ${await gas('SensitiveReport')}, denied summary ${await gas('DeniedSummary')}, ban ${await gas('Banned')}`)

    endClients()
    const stopped = await proxy.cli.stop('SIGTERM', 10_000)
    procs.delete(proxy.cli)
    assert.deepEqual([stopped.code, stopped.hung], [0, false], proxy.cli.stderr().slice(-2000))
    // Periods anchored by this proxy (one more may have closed while it stopped).
    anchoredPeriodsA = new Set((await events()).filter((e) => e.name === 'Anchored').map((a) => (Number(a.a.fromTime) * 1000) / PERIOD_MS))
    t.diagnostic(`proxy start to every report on chain: ${tChain - started} ms; ${now.length} journal entries, ${anchors.length} anchors`)
  })

  let tamperedJson: { stderr: string; where: RegExp } | undefined

  test('audit verify proves the journal, and pinpoints a tampered entry (exit 7)', async () => {
    const r = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs(), '--json'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const out = r.json<VerifyReport & { mode: string }>()
    assert.equal(out.ok, true)
    assert.equal(out.chain.ok, true)
    assert.equal(out.anchors.checked, true)
    assert.deepEqual(out.anchors.reporters.map((a) => getAddress(a)), [REPORTER], 'the chain says whose anchors these are')
    assert.deepEqual([out.anchors.late, out.anchors.unanchored], [0, 0], 'every ended period anchored, on time')
    assert.equal(out.anchors.mismatched, 0)
    assert.ok(out.anchors.verified >= anchoredPeriodsA.size, `${out.anchors.verified} periods verified, ${anchoredPeriodsA.size} anchored`)
    for (const p of out.anchors.periods) if (anchoredPeriodsA.has((p.fromTime * 1000) / PERIOD_MS)) assert.equal(p.status, 'verified')

    // Change the topic of one anchored entry.
    const target = (await journal()).find((x) => !x.record.redacted && x.record.entry.topic === 'plant/valve' && anchoredPeriodsA.has(periodOf(x.record.t)))!
    assert.ok(target)
    const file = join(journalDir(dataDir), target.file)
    const original = readFileSync(file, 'utf8')
    const lines = original.split('\n')
    assert.match(lines[target.line - 1]!, /"topic":"plant\/valve"/)
    lines[target.line - 1] = lines[target.line - 1]!.replace('"topic":"plant/valve"', '"topic":"plant/valvX"')
    writeFileSync(file, lines.join('\n'))
    try {
      const bad = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs(), '--json'])
      assert.equal(bad.code, 7, bad.stdout + bad.stderr)
      const rep = bad.json<VerifyReport>()
      assert.equal(rep.ok, false)
      assert.deepEqual(rep.chain.problems.map((p) => [p.kind, p.file, p.line, p.seq]), [['content-altered', target.file, target.line, target.record.seq]])
      const where = new RegExp(`${target.file.replace('.', '\\.')}:${target.line}: entry seq ${target.record.seq} was changed`)
      assert.match(rep.firstProblem ?? '', where)
      tamperedJson = { stderr: bad.stderr, where }
      const mism = rep.anchors.periods.filter((p) => p.status === 'mismatch')
      assert.deepEqual(mism.map((p) => (p.fromTime * 1000) / PERIOD_MS), [periodOf(target.record.t)])

      const human = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs()])
      assert.equal(human.code, 7)
      assert.match(oneLine(human.stderr), new RegExp(`${target.file.replace('.', '\\.')}:${target.line}: entry seq ${target.record.seq} was changed`))
    } finally {
      writeFileSync(file, original)
    }
    const again = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs(), '--json'])
    assert.equal(again.code, 0, again.stdout + again.stderr)
  })

  test('audit verify --json on a tampered journal also names the problem on stderr', () => {
    assert.ok(tamperedJson, 'the tamper test ran')
    assert.match(oneLine(tamperedJson.stderr), tamperedJson.where)
  })

  test('audit report: grants with actor and reason, the paid join, bans, sensitive reports, anchors, proven journal rows; json, csv, table; --topic and --client', async () => {
    const from = new Date(t0).toISOString()
    const report = async (extra: string[]) => {
      const r = await flytrap(['audit', 'report', '--from', from, '--to', 'now', '--data-dir', dataDir, ...chainArgs(), ...extra])
      assert.equal(r.code, 0, r.stderr)
      return r
    }
    const all = JSON.parse((await report(['--format', 'json'])).stdout) as AuditReport
    assert.equal(all.version, 1)
    assert.equal(getAddress(all.contract), getAddress(chain.address))
    const rows = all.rows
    const find = (pred: (r: ReportRow) => boolean, what: string) => {
      const r = rows.find(pred)
      assert.ok(r, `no row for ${what}; chain rows: ${JSON.stringify(rows.filter((x) => x.source === 'chain').map((x) => [x.event, x.topic, x.client, x.actor, x.reason, x.detail]))}`)
      return r
    }
    find((r) => r.event === 'Granted' && r.topic === 'plant/valve' && r.client === VALVE && r.actor === OWNER && r.reason === 'valve controller', 'the plant/valve grant')
    find((r) => r.event === 'Granted' && r.topic === 'ward/vitals' && r.client === VALVE && r.actor === OWNER && r.reason === 'bedside monitor 7', 'the CLI grant')
    find((r) => r.event === 'TopicAdded' && r.topic === 'ward/vitals' && /flags sensitive/.test(r.detail ?? '') && r.reason === 'patient data', 'the sensitive topic')
    find((r) => r.event === 'Joined' && r.topic === 'market/prices' && r.client === ARCHIVE && /paid 0\.01 ETH/.test(r.detail ?? ''), 'the paid join')
    find((r) => r.event === 'Banned' && r.client === ROGUE && r.actor === REPORTER, 'the ban')
    find((r) => r.event === 'SensitiveReport' && r.topic === 'ward/vitals' && r.client === VALVE && /^published \d+/.test(r.detail ?? ''), 'the sensitive publisher')
    for (const who of [NURSE, ARCHIVE]) find((r) => r.event === 'SensitiveReport' && r.topic === 'ward/vitals' && r.client === who && /^received \d+/.test(r.detail ?? ''), `receiver ${who}`)
    const connectSummaries = rows.filter((r) => r.event === 'DeniedSummary' && r.topic === '$connect' && r.actor === REPORTER)
    assert.equal(connectSummaries.reduce((n, r) => n + Number(/^(\d+) refused in \[/.exec(r.detail ?? '')?.[1] ?? 0), 0), refusedConnects, 'the refused connects, summed over periods')
    const anchorRows = rows.filter((r) => r.event === 'Anchored')
    assert.ok(anchorRows.length >= anchoredPeriodsA.size && anchorRows.every((r) => r.actor === REPORTER && r.txHash), `${anchorRows.length} anchor rows`)

    // Journal rows: every entry in the range, proven exactly when an anchor covers its period.
    const journalRows = rows.filter((r) => r.source === 'journal')
    const recs = (await journal()).filter((r) => r.record.t >= t0)
    assert.equal(journalRows.length, recs.length)
    assert.equal(all.journal?.entries, recs.length)
    for (const r of journalRows) assert.equal(r.proven, anchoredPeriodsA.has(periodOf(Date.parse(r.time))), `${r.time} ${r.event} ${r.detail}`)
    assert.ok(journalRows.some((r) => r.proven), 'proven rows')
    assert.ok(rows.filter((r) => r.source === 'chain').every((r) => r.proven === null))
    find((r) => r.source === 'journal' && r.event === 'connect' && r.reason !== null && /deny/.test(r.detail ?? ''), 'a refused connect')
    find((r) => r.source === 'journal' && r.event === 'ban' && r.client === ROGUE, 'the ban in the journal')

    // --topic, as CSV (RFC 4180), and the same as JSON.
    const csvRun = await report(['--topic', 'ward/vitals', '--format', 'csv'])
    assert.ok(csvRun.stdout.endsWith('\r\n'))
    assert.doesNotMatch(csvRun.stdout.replaceAll('\r\n', ''), /\n/, 'every line ends in CRLF (no line break inside these fields)')
    const csv = parseCsv(csvRun.stdout)
    assert.deepEqual(csv[0], [...CSV_COLUMNS])
    for (const rec of csv) assert.equal(rec.length, CSV_COLUMNS.length)
    const byTopic = (JSON.parse((await report(['--topic', 'ward/vitals', '--format', 'json'])).stdout) as AuditReport).rows
    assert.equal(csv.length - 1, byTopic.length)
    csv.slice(1).forEach((rec, i) => {
      const j = byTopic[i]!
      const f = csvFields(j)
      assert.deepEqual(rec, CSV_COLUMNS.map((k) => (f[k] === null ? '' : String(f[k]))), `csv row ${i + 1}`)
    })
    assert.ok(byTopic.every((r) => r.topic === 'ward/vitals'), 'only ward/vitals rows')
    for (const ev of ['TopicAdded', 'Granted', 'SensitiveReport', 'publish', 'deliver', 'subscribe']) assert.ok(byTopic.some((r) => r.event === ev), `a ${ev} row for ward/vitals`)

    // --client, as a table and as JSON (written with --out).
    const table = (await report(['--client', VALVE])).stdout
    for (const s of ['Granted', 'SensitiveReport', 'publish', 'connect', 'valve controller', 'bedside monitor 7']) assert.ok(table.includes(s), `table mentions ${s}`)
    assert.ok(!table.includes(`${ROGUE.slice(0, 6)}…${ROGUE.slice(-4)}`), 'no rows of another client')
    const outFile = join(cwd, 'rogue.json')
    await report(['--client', ROGUE, '--format', 'json', '--out', outFile])
    const rogue = (JSON.parse(readFileSync(outFile, 'utf8')) as AuditReport).rows
    assert.ok(rogue.length > 0 && rogue.every((r) => r.client === ROGUE), JSON.stringify(rogue.filter((r) => r.client !== ROGUE)))
    for (const ev of ['Banned', 'connect', 'subscribe', 'publish', 'ban', 'disconnect']) assert.ok(rogue.some((r) => r.event === ev), `a ${ev} row for the rogue client`)
  })

  test('a coalesced journal row in the report says how many decisions it stands for', async () => {
    const r = await flytrap(['audit', 'report', '--from', new Date(t0).toISOString(), '--to', 'now', '--topic', 'plant/valve', '--client', VALVE, '--format', 'json', '--data-dir', dataDir, ...chainArgs()])
    assert.equal(r.code, 0, r.stderr)
    const rows = (JSON.parse(r.stdout) as AuditReport).rows.filter((x) => x.source === 'journal' && x.event === 'publish')
    const counts = rows.map((x) => {
      const m = /\bcount (\d+)|×\s*(\d+)|(\d+)\s*×/.exec(x.detail ?? '')
      return Number(m?.[1] ?? m?.[2] ?? m?.[3] ?? 1)
    })
    assert.equal(counts.reduce((a, b) => a + b, 0), 50)
  })

  test('audit forget erases the banned client from the journal; audit verify still passes', async () => {
    const r = await flytrap(['audit', 'forget', ROGUE, '--data-dir', dataDir, ...chainArgs(), '--key', K[5]!, '--reason', 'GDPR art. 17', '--requested-by', 'data subject', '--yes', '--json'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const out = r.json<{ redacted: number; verify: { ok: boolean; anchorsChecked: boolean; periodsVerified: number }[]; outboxes: { removed: string[]; unsent: unknown[] }[] }>()
    assert.ok(out.redacted >= 5, `${out.redacted} entries redacted`)
    assert.deepEqual([out.verify[0]!.ok, out.verify[0]!.anchorsChecked], [true, true])
    assert.ok(out.verify[0]!.periodsVerified >= anchoredPeriodsA.size)
    // The ban of the rogue went on chain through the outbox: its intent (ABI arguments) and signed raw
    // transaction are gone from the outbox, and no file of the data directory names the address any more.
    assert.ok(out.outboxes[0]!.removed.length >= 1, 'the mined ban batch naming the rogue left the outbox')
    assert.deepEqual(out.outboxes[0]!.unsent, [])
    for (const needle of [ROGUE, ROGUE.toLowerCase(), ROGUE.slice(2)]) {
      const g = spawnSync('grep', ['-rilaF', needle, dataDir], { encoding: 'utf8' })
      assert.equal(g.status, 1, `grep -ri ${needle} ${dataDir} found: ${g.stdout}`)
    }
    const dir = journalDir(dataDir)
    const index = join(dir, 'index')
    // Empty ranges commit to no index (index 0): only ranges with entries have a stored one.
    const withEntries = (await events()).filter((e) => e.name === 'Anchored' && Number(e.a.count) > 0).length
    assert.ok(withEntries > 0 && readdirSync(index).length >= withEntries, 'the proxy stored the scope index of every range with entries it anchored')
    const files = [...readdirSync(dir).filter((n) => n !== 'index').map((n) => join(dir, n)), ...readdirSync(index).map((n) => join(index, n))]
    const text = files.map((f) => readFileSync(f, 'utf8')).join('\n')
    assert.doesNotMatch(text, new RegExp(ROGUE.slice(2), 'i'))
    assert.doesNotMatch(text, /rogue-7/)
    assert.match(text, new RegExp(VALVE.slice(2), 'i'))

    const v = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs(), '--json'])
    assert.equal(v.code, 0, v.stdout + v.stderr)
    const rep = v.json<VerifyReport>()
    assert.deepEqual([rep.ok, rep.journal.redacted, rep.anchors.mismatched], [true, out.redacted, 0])
    assert.ok(rep.anchors.verified >= anchoredPeriodsA.size)
  })

  test('sensitive publishes straddling a period boundary: the chain and the journal agree on each period', async () => {
    const proxy = await startProxy()
    try {
      const valve = await connect(proxy.url, { key: 1, clientId: 'valve-b' })
      const nurse = await connect(proxy.url, { key: 2, clientId: 'nurse-b' })
      const got = inbox(nurse)
      assert.deepEqual(await subscribeCodes(nurse, 'ward/vitals'), [1])
      // Wait for a boundary far enough ahead, then send 60 publishes from 150 ms before it to 150 ms after.
      let boundary = (periodOf(Date.now()) + 1) * PERIOD_MS
      if (boundary - Date.now() < 400) boundary += PERIOD_MS
      await sleep(boundary - 150 - Date.now())
      const acks: Promise<number>[] = []
      for (let i = 0; i < 60; i++) {
        acks.push(publishCode(valve, 'ward/vitals', `b${i}`))
        await sleep(5)
      }
      assert.deepEqual(new Set(await Promise.all(acks)), new Set([0]))
      await waitFor(() => got.messages.filter((m) => m.topic === 'ward/vitals').length === 60, 5_000, '60 deliveries')
      const periods = [periodOf(boundary) - 1, periodOf(boundary)]
      let evs: Ev[] = []
      const report = (k: number) => evs.filter((e) => e.name === 'SensitiveReport' && lc(e.a.topic) === lc(topicId('ward/vitals')) && (Number(e.a.fromTime) * 1000) / PERIOD_MS === k)
      await waitFor(async () => ((evs = await events()), periods.every((k) => report(k).length > 0)), 15_000, 'the sensitive reports of both periods')
      const es = entries(await journal())
      const rows = await mapSeq(periods, async (k) => {
        const sum = (pred: (e: Entry) => boolean) => es.filter((e) => periodOf(e.t) === k && pred(e)).reduce((n, e) => n + (e.count ?? 1), 0)
        return {
          period: k,
          chain: [await memberCount(report(k), 'ward/vitals', VALVE, 'publisher'), await memberCount(report(k), 'ward/vitals', NURSE, 'receiver')],
          journal: [sum((e) => e.kind === 'publish' && e.outcome === 'allow' && e.clientId === 'valve-b'), sum((e) => e.kind === 'deliver' && e.outcome === 'allow' && e.clientId === 'nurse-b')],
        }
      })
      for (const r of rows) assert.deepEqual(r.chain, r.journal, `period ${r.period}: chain ${r.chain.join('/')} vs journal ${r.journal.join('/')}`)
      assert.equal(rows[0]!.journal[0]! + rows[1]!.journal[0]!, 60)
      assert.ok(rows.every((r) => r.journal[0]! > 0), `the publishes straddle the boundary: ${rows.map((r) => r.journal[0]).join('/')}`)
    } finally {
      endClients()
      await proxy.cli.stop('SIGTERM', 10_000)
      procs.delete(proxy.cli)
    }
  })

  // Filled in by the kill -9 test; checked by the one after it.
  let killPeriod = -1
  let killPeriodEntries = 0
  let afterRestart: Ev[] = []
  let killPeriodStatus = ''

  // What the clients saw acknowledged or delivered during the kill -9 test: each must be journaled.
  const seen = { fleet: new Map<string, Set<string>>(), valve: new Map<string, number>(), nurseVitals: 0 }

  test('kill -9 under load: the journal reopens (torn tail cut off), loses no written entry, pending chain writes are sent after the restart, audit verify passes', async (t) => {
    const tStart = Date.now()
    const proxy = await startProxy()
    const units = await Promise.all([1, 2, 3].map((i) => connect(proxy.url, { key: i, clientId: `unit-${i}` })))
    const valve = await connect(proxy.url, { key: 1, clientId: 'valve-2' })
    const nurse = await connect(proxy.url, { key: 2, clientId: 'nurse-2' })
    assert.deepEqual(await subscribeCodes(nurse, 'ward/vitals'), [1])
    nurse.on('message', (topic) => {
      if (topic === 'ward/vitals') seen.nurseVitals++
    })
    let flooding = true
    let acked = 0
    const flood = async (c: MqttClient, topic: (i: number) => string, onAck: (topic: string) => void) => {
      let i = 0
      while (flooding) {
        await Promise.all(
          Array.from({ length: 40 }, () => {
            const name = topic(i++)
            return c.publishAsync(name, 'x', { qos: 1 }).then(
              () => {
                acked++ // also a PUBACK read after the kill: the proxy sent it before it died
                onAck(name)
              },
              () => undefined,
            )
          }),
        )
      }
    }
    // Distinct topics, so most decisions are entries of their own (coalescing merges only identical ones).
    for (const [n, c] of units.entries()) {
      const acks = new Set<string>()
      seen.fleet.set(`unit-${n + 1}`, acks)
      void flood(c, (i) => `fleet/${n}/${i}`, (name) => acks.add(name))
    }
    void flood(valve, (i) => (i % 4 === 0 ? 'ward/vitals' : 'plant/valve'), (name) => seen.valve.set(name, (seen.valve.get(name) ?? 0) + 1))

    // One boundary with mining on; then mining off, so the next boundary's writes are broadcast but stay in the pool.
    const p0 = periodOf(Date.now())
    await sleep((p0 + 1) * PERIOD_MS + 600 - Date.now())
    const boundary = (periodOf(Date.now()) + 1) * PERIOD_MS
    await rpc.send('evm_setAutomine', [false])
    let pending: { id: string; kind: string; args: unknown[] }[] = []
    try {
      await sleep(boundary + 700 - Date.now())
      const outboxLines = () => readFileSync(join(dataDir, 'outbox', 'outbox.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { t: string; id: string; kind: string; args: unknown[]; hash?: string })
      // The anchor comes last: its scope index is read back from the period's durable entries first.
      await waitFor(() => outboxLines().some((r) => r.t === 'intent' && r.kind === 'anchor' && !outboxLines().some((d) => d.t === 'done' && d.id === r.id)), 5_000, "the ended period's anchor enqueued")
      await waitFor(() => outboxLines().some((r) => r.t === 'attempt' && !outboxLines().some((d) => d.t === 'done' && d.id === r.id)), 3_000, 'a chain write broadcast and not mined')
      const recs = outboxLines()
      const done = new Set(recs.filter((r) => r.t === 'done').map((r) => r.id))
      pending = recs.filter((r) => r.t === 'intent' && !done.has(r.id))
      assert.ok(pending.some((p) => p.kind === 'anchor'), `the anchor of the period that just ended is pending: ${JSON.stringify(pending)}`)

      // What the journal holds now (complete lines only), then SIGKILL mid-flood.
      const before = await journal()
      assert.ok(acked > 500, `${acked} publishes acknowledged before the kill`)
      killPeriod = periodOf(Date.now())
      proxy.cli.child.kill('SIGKILL')
      const exit = await proxy.cli.exited
      procs.delete(proxy.cli)
      assert.equal(exit.signal, 'SIGKILL')
      flooding = false
      await sleep(100) // what the dead proxy had already sent reaches the clients
      endClients()

      // A torn write at the tail, as a crash in the middle of a write leaves it.
      const segs = await listSegments(dataDir)
      appendFileSync(segs[segs.length - 1]!.path, '{"seq":' + String(before[before.length - 1]!.record.seq + 1) + ',"t":17')

      // The node forgets the broadcast transactions: the outbox must send them again from its records.
      await rpc.send('anvil_dropAllTransactions', [])
      await rpc.send('evm_setAutomine', [true])

      const restarted = await startProxy()
      const tRestarted = Date.now()
      const torn = readdirSync(journalDir(dataDir)).filter((n) => n.includes('.torn-'))
      assert.equal(torn.length, 1, `the torn tail is kept aside: ${readdirSync(journalDir(dataDir)).join(' ')}`)
      assert.match(restarted.cli.stderr(), /torn/i)

      // Every entry written before the kill is still there, unchanged; seqs have no gap.
      const reopened = await journal()
      // Every PUBACK a client saw and every sensitive message delivered has its entry (strict journal sync).
      const es = entries(reopened)
      const sumOf = (pred: (e: Entry) => boolean) => es.filter(pred).reduce((n, e) => n + (e.count ?? 1), 0)
      for (const [clientId, acks] of seen.fleet) {
        const journaled = new Set(es.filter((e) => e.kind === 'publish' && e.outcome === 'allow' && e.clientId === clientId).map((e) => e.topic))
        const lost = [...acks].filter((x) => !journaled.has(x))
        assert.deepEqual(lost.slice(0, 5), [], `${lost.length} of ${acks.size} PUBACKed publishes of ${clientId} are not in the journal`)
      }
      for (const [topic, n] of seen.valve) {
        const journaled = sumOf((e) => e.kind === 'publish' && e.outcome === 'allow' && e.clientId === 'valve-2' && e.topic === topic)
        assert.ok(journaled >= n, `valve-2 saw ${n} PUBACKs on ${topic}, the journal has ${journaled} publishes`)
      }
      const deliveries = sumOf((e) => e.kind === 'deliver' && e.outcome === 'allow' && e.clientId === 'nurse-2' && e.topic === 'ward/vitals')
      assert.ok(seen.nurseVitals > 0 && deliveries >= seen.nurseVitals, `nurse-2 received ${seen.nurseVitals} sensitive messages, the journal has ${deliveries} deliveries`)
      const bySeq = new Map(reopened.map((r) => [r.record.seq, r.record.leaf]))
      for (const r of before) assert.equal(bySeq.get(r.record.seq), r.record.leaf, `entry seq ${r.record.seq}`)
      reopened.forEach((r, i) => assert.equal(r.record.seq, i + 1, 'seqs run 1..n without a gap'))
      const fleet = entries(before).filter((e) => e.kind === 'publish' && e.outcome === 'allow' && e.topic?.startsWith('fleet/')).length
      assert.ok(fleet > 300, `${fleet} fleet publishes journaled before the kill`)
      const killed = reopened.filter((r) => r.record.seq <= before[before.length - 1]!.record.seq)
      // The period the kill interrupted is the one of the last entry written before it (the wall clock may
      // already have crossed into a period with no entries yet).
      killPeriod = periodOf(killed[killed.length - 1]!.record.t)
      killPeriodEntries = killed.filter((r) => periodOf(r.record.t) === killPeriod).length

      // The pending writes reach the chain after the restart, and every period that ended before the kill is anchored.
      const closedBefore = new Set(killed.map((r) => periodOf(r.record.t)).filter((k) => k < killPeriod))
      const fromSec = (x: unknown) => Number(x)
      const landed = (evs: Ev[], p: { kind: string; args: unknown[] }) =>
        p.kind === 'anchor'
          ? evs.some((e) => e.name === 'Anchored' && lc(e.a.root) === lc(p.args[4]) && fromSec(e.a.fromTime) === Number(p.args[0])) // (from, to, firstSeq, count, root, prevChain, chain)
          : p.kind === 'sensitive'
            ? evs.some((e) => e.name === 'SensitiveReport' && lc(e.a.topic) === lc(p.args[0]) && fromSec(e.a.fromTime) === Number(p.args[1]))
            : p.kind === 'denied'
              ? evs.some((e) => e.name === 'DeniedSummary' && fromSec(e.a.fromTime) === Number(p.args[0]))
              : evs.some((e) => e.name === 'Banned')
      let evs: Ev[] = []
      await waitFor(
        async () => {
          evs = await events()
          const anchored = new Set(evs.filter((e) => e.name === 'Anchored').map((e) => (Number(e.a.fromTime) * 1000) / PERIOD_MS))
          return pending.every((p) => landed(evs, p)) && [...closedBefore].every((k) => anchored.has(k))
        },
        15_000,
        'the pending writes and the anchors of every period before the kill',
      )
      const tLanded = Date.now()
      // Exactly once: one anchor per period, whatever was resent.
      const perPeriod = new Map<number, number>()
      for (const e of evs.filter((x) => x.name === 'Anchored')) perPeriod.set(Number(e.a.fromTime), (perPeriod.get(Number(e.a.fromTime)) ?? 0) + 1)
      for (const [k, n] of perPeriod) assert.equal(n, 1, `anchors for the period from ${k}`)
      for (const a of evs.filter((e) => e.name === 'Anchored' && closedBefore.has((Number(e.a.fromTime) * 1000) / PERIOD_MS))) {
        const k = (Number(a.a.fromTime) * 1000) / PERIOD_MS
        assert.equal(Number(a.a.count), reopened.filter((r) => periodOf(r.record.t) === k).length, `count anchored for period ${k}`)
      }

      // The restarted proxy anchors the period the kill interrupted: at once when that period has ended by
      // the restart, else when it ends. Poll for it (and for one period closed by the restarted proxy).
      const restartPeriod = periodOf(tRestarted)
      await waitFor(
        async () => {
          afterRestart = await events()
          const anchored = new Set(afterRestart.filter((e) => e.name === 'Anchored').map((e) => (Number(e.a.fromTime) * 1000) / PERIOD_MS))
          return anchored.has(killPeriod) && [...anchored].some((k) => k >= restartPeriod)
        },
        15_000,
        'the anchor of the period open at the kill, and one of the restarted proxy',
      ).catch(() => {}) // the assertion below says what is missing
      const stopped = await restarted.cli.stop('SIGTERM', 10_000)
      procs.delete(restarted.cli)
      assert.deepEqual([stopped.code, stopped.hung], [0, false], restarted.cli.stderr().slice(-2000))

      // The period open at the kill was reported from the journal: its on-chain counts are the journal's.
      const final = entries(await journal())
      const inKill = (e: Entry) => periodOf(e.t) === killPeriod
      const journalSum = (pred: (e: Entry) => boolean) => final.filter((e) => inKill(e) && pred(e)).reduce((n, e) => n + (e.count ?? 1), 0)
      const reported = afterRestart.filter((e) => e.name === 'SensitiveReport' && lc(e.a.topic) === lc(topicId('ward/vitals')) && (Number(e.a.fromTime) * 1000) / PERIOD_MS === killPeriod)
      const jPub = journalSum((e) => e.kind === 'publish' && e.outcome === 'allow' && e.topic === 'ward/vitals' && lc(e.address) === lc(VALVE))
      const jRecv = journalSum((e) => e.kind === 'deliver' && e.outcome === 'allow' && e.topic === 'ward/vitals' && lc(e.address) === lc(NURSE))
      assert.ok(jPub > 0 && jRecv > 0, `sensitive traffic in the period of the kill (${jPub} publishes, ${jRecv} deliveries)`)
      assert.deepEqual([await memberCount(reported, 'ward/vitals', VALVE, 'publisher'), await memberCount(reported, 'ward/vitals', NURSE, 'receiver')], [jPub, jRecv], `period ${killPeriod}: on-chain sensitive counts = the journal's`)

      const v = await flytrap(['audit', 'verify', '--data-dir', dataDir, ...chainArgs(), '--json'])
      assert.equal(v.code, 0, v.stdout + v.stderr)
      const rep = v.json<VerifyReport>()
      assert.deepEqual([rep.ok, rep.chain.ok, rep.anchors.mismatched], [true, true, 0])
      killPeriodStatus = rep.anchors.periods.find((p) => (p.fromTime * 1000) / PERIOD_MS === killPeriod)?.status ?? 'absent'
      for (const k of closedBefore) assert.equal(rep.anchors.periods.find((p) => (p.fromTime * 1000) / PERIOD_MS === k)?.status, 'verified', `period ${k}`)
      t.diagnostic(`kill -9: ${before.length} entries before the kill (${acked} publishes acknowledged), ${pending.length} chain writes pending; restart ${tRestarted - tStart} ms into the test, writes landed ${tLanded - tRestarted} ms after it; ${rep.journal.entries} entries, ${rep.anchors.verified} periods verified`)
    } finally {
      flooding = false
      await rpc.send('evm_setAutomine', [true])
    }
  })

  test('the period open at the kill -9 is anchored after the restart', async () => {
    assert.ok(killPeriod > 0 && killPeriodEntries > 0, 'the kill test ran')
    const anchored = afterRestart.some((e) => e.name === 'Anchored' && (Number(e.a.fromTime) * 1000) / PERIOD_MS === killPeriod)
    assert.ok(anchored, `period ${killPeriod} (${killPeriodEntries} journal entries written before the kill) has no anchor (audit verify: ${killPeriodStatus})`)
  })
})
