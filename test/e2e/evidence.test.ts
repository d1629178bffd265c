/**
 * Evidence bundles end to end (issue 11, items 1–2): real anvil, real mosquitto and `flytrap proxy start` with a
 * journal, a 2 s anchoring period and a registered reporter. MQTT.js clients drive grants, publishes, subscribes,
 * a refused access and traffic on a sensitive topic; once the periods are anchored, `flytrap audit export` writes
 * bundles (whole journal, one topic, one client) and `flytrap audit check` verifies them as a regulator would:
 * as a child process in a fresh directory holding only the bundle, with only --rpc. Then every part of a bundle
 * is tampered with in turn and the check must fail with exit 7 naming that record.
 * Needs dist/ (npm run build). The tests in this file depend on each other and run in order.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getBytes, hexlify, randomBytes, Wallet } from 'ethers'
import type { MqttClient } from 'mqtt'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { readRecords } from '../../src/lib/audit/journal-files.js'
import { canonicalJson } from '../../src/lib/audit/entry.js'
import type { CheckResult } from '../../src/lib/audit/evidence/check.js'
import type { DisclosedEntry, EvidenceBundle } from '../../src/lib/audit/evidence/format.js'
import { bundleDigest } from '../../src/lib/audit/evidence/signature.js'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { runCli, tempCwd, type CliRun } from '../helpers/cli.js'
import { connectClient, publishCode, sleep, spawnCli, subscribeCodes, waitFor, type LongCli } from '../helpers/e2e.js'

const PERIOD_MS = 2_000
const K = ANVIL_DEV_KEYS
const addr = (i: number) => new Wallet(K[i]!).address
const VALVE = addr(1)
const NURSE = addr(2)
const REPORTER = addr(5)
const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ')

describe('evidence bundles end to end (proxy CLI, anvil, mosquitto)', () => {
  let chain: ChainFixture
  let mosquitto: MosquittoHandle
  let cwd: string
  let dataDir: string
  let proxy: LongCli | undefined
  const clients = new Set<MqttClient>()
  let t0 = 0

  const cleanEnv = (): Record<string, string | undefined> => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('FLYTRAP_')).map((k) => [k, undefined]))
  const flytrap = (args: string[], dir = cwd): Promise<CliRun> => runCli(args, { cwd: dir, env: cleanEnv(), timeoutMs: 30_000 })
  const conn = () => ['--rpc', chain.rpcUrl, '--contract', chain.address]

  /** `audit check` in a fresh directory that holds only the bundle: no .flytrap/, no data directory, only --rpc. */
  async function check(bundle: unknown, extra: string[] = ['--rpc', chain.rpcUrl]): Promise<{ run: CliRun; result: CheckResult }> {
    const dir = tempCwd('flytrap-regulator-')
    try {
      writeFileSync(join(dir, 'bundle.json'), typeof bundle === 'string' ? bundle : JSON.stringify(bundle))
      const run = await flytrap(['audit', 'check', 'bundle.json', '--json', ...extra], dir)
      return { run, result: run.json<CheckResult>() }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  async function connect(url: string, key: number, clientId: string): Promise<MqttClient> {
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        const c = await connectClient({ key: K[key]!, url, clientId, extra: { connectTimeout: 10_000 } }, chain)
        clients.add(c)
        return c
      } catch (err) {
        if (Date.now() > deadline) throw err
        await sleep(150)
      }
    }
  }

  before(async () => {
    t0 = Date.now()
    chain = await chainFixture()
    mosquitto = await startMosquitto()
    cwd = tempCwd('flytrap-evidence-e2e-')
    dataDir = join(cwd, 'proxy-data')
    const owner = chain.as(0)
    const none = { pubFee: 0n, subFee: 0n, open: false, period: 0, countries: '0x' }
    await owner.addReporter(REPORTER, 'proxy eu-1')
    await owner.addTopic({ ...none, name: 'ward/vitals', sensitive: true, reason: 'patient data' })
    await owner.allow('ward/vitals', VALVE, 1, 0, 'bedside monitor 7')
    await owner.allow('ward/vitals', NURSE, 2, 0, 'nurse station')
    await owner.addTopic({ ...none, name: 'plant/valve', sensitive: false, reason: 'valve telemetry' })
    await owner.allow('plant/valve', VALVE, 1, 0, 'valve controller')
  })

  after(async () => {
    for (const c of clients) c.end(true)
    await proxy?.stop('SIGKILL', 5_000)
    await mosquitto?.stop()
    await chain?.close()
    if (cwd) rmSync(cwd, { recursive: true, force: true })
  })

  let whole: EvidenceBundle
  let byTopic: EvidenceBundle
  let byClient: EvidenceBundle

  test('traffic through the proxy is anchored; audit export writes signed bundles for the whole journal, a topic and a client', async () => {
    proxy = spawnCli(
      [
        'proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, ...conn(), '--from-block', String(chain.deployBlock),
        '--poll-interval', '200ms', '--period', '2s', '--data-dir', dataDir, '--reporter-key', K[5]!,
        '--ban-threshold', '50', '--shutdown-grace', '1s', '--auth-workers', '0', '--log-level', 'warn',
      ],
      { cwd },
    )
    const first = await proxy.firstJsonLine<{ listening: { port: number }[] }>(30_000)
    const url = `mqtt://127.0.0.1:${first.listening[0]!.port}`
    const valve = await connect(url, 1, 'valve-ctl')
    const nurse = await connect(url, 2, 'nurse-station')
    const rogue = await connect(url, 4, 'rogue-7')
    assert.deepEqual(await subscribeCodes(nurse, 'ward/vitals'), [1])
    assert.notEqual((await subscribeCodes(rogue, 'ward/vitals'))[0], 1, 'the refused access')
    for (let i = 0; i < 3; i++) assert.equal(await publishCode(valve, 'ward/vitals', `pulse ${i}`), 0)
    assert.equal(await publishCode(valve, 'plant/valve', 'open'), 0)
    await sleep(200)
    for (const c of clients) c.end(true)
    clients.clear()

    // Wait until every period with entries is anchored and the sensitive topic's summary is on chain.
    const records: number[] = []
    for await (const { record } of readRecords(dataDir)) records.push(record.t)
    const periods = new Set(records.map((t) => Math.floor(t / PERIOD_MS)))
    const c = chain.as(0)
    await waitFor(
      async () => {
        const evs = c.parseLogs(await chain.provider.getLogs({ address: chain.address, fromBlock: chain.deployBlock, toBlock: 'latest' }))
        const anchored = new Set(evs.filter((e) => e.name === 'Anchored').map((e) => (Number(e.args[1]) * 1000) / PERIOD_MS))
        return [...periods].every((k) => anchored.has(k)) && evs.some((e) => e.name === 'SensitiveReport')
      },
      20_000,
      'anchors of every period with entries, and the sensitive report',
    )
    await proxy.stop('SIGTERM', 10_000)
    proxy = undefined

    const exp = async (name: string, extra: string[]) => {
      const r = await flytrap(['audit', 'export', '--from', String(Math.floor(t0 / 1000)), '--to', 'now', '--data-dir', dataDir, '--key', K[5]!, '--out', name, '--json', ...conn(), '--from-block', String(chain.deployBlock), ...extra])
      assert.equal(r.code, 0, `export ${extra.join(' ')}: ${r.stderr}`)
      const res = r.json<{ scope: { from: string; to: string }; notes: string[]; version: number }>()
      assert.equal(res.version, 1)
      assert.ok(res.notes.some((n) => n.includes('rounded out to whole anchored periods')))
      assert.equal(Date.parse(res.scope.from) % PERIOD_MS, 0, 'the scope starts on a period boundary')
      return JSON.parse(readFileSync(join(cwd, name), 'utf8')) as EvidenceBundle
    }
    whole = await exp('whole.json', [])
    byTopic = await exp('topic.json', ['--topic', 'ward/vitals'])
    byClient = await exp('client.json', ['--client', NURSE])
    assert.equal(whole.signer, REPORTER)
    const all = whole.periods.flatMap((p) => p.entries) as DisclosedEntry[]
    assert.ok(all.some((e) => e.entry.kind === 'subscribe' && e.entry.outcome === 'deny' && e.entry.clientId === 'rogue-7'), 'the refused subscribe is in the bundle')
    assert.ok(all.some((e) => e.entry.kind === 'deliver' && e.entry.sensitive), 'a sensitive delivery is in the bundle')
    assert.ok(whole.policy.some((e) => e.event === 'Granted' && e.args.reason === 'nurse station'))
    assert.ok(whole.summaries.some((e) => e.event === 'SensitiveReport'))
    assert.ok(whole.periods.every((p) => typeof p.anchor.ref.blockHash === 'string'))
    // The topic bundle cites that topic's policy and none of the other's.
    assert.ok(byTopic.policy.some((e) => e.event === 'Granted' && e.args.reason === 'bedside monitor 7'))
    assert.ok(!byTopic.policy.some((e) => e.args.reason === 'valve controller'))
    assert.ok(byClient.policy.every((e) => e.event !== 'Granted' || e.args.client === NURSE.toLowerCase()))
  })

  test('audit check passes each bundle in a fresh directory with only the bundle and --rpc; --offline says what it did not check', async () => {
    for (const [name, b] of [['whole', whole], ['topic', byTopic], ['client', byClient]] as const) {
      const { run, result } = await check(b)
      assert.equal(run.code, 0, `${name}: ${run.stderr}`)
      assert.equal(result.ok, true)
      assert.equal(result.offline, false)
      for (const [k, st] of Object.entries(result.steps)) assert.equal(st.status, 'ok', `${name}: step ${k}`)
      assert.ok(result.inScope.length > 0, `${name}: entries in scope`)
    }
    const topicSeqs = (byTopic.periods.flatMap((p) => p.entries) as DisclosedEntry[]).filter((e) => e.entry.topic === 'plant/valve')
    assert.equal(topicSeqs.length, 0, 'the topic bundle discloses no entry of the other topic')
    const { run, result } = await check(whole, ['--offline'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(result.offline, true)
    assert.equal(result.steps.anchors.status, 'not-checked')
    assert.ok(result.warnings.some((w) => w.includes('NOT checked against the chain')))
  })

  test('every part of a bundle tampered with in turn: exit 7 naming that record', async () => {
    const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T
    const firstWith = (b: EvidenceBundle, pred: (e: DisclosedEntry) => boolean) => {
      for (const p of b.periods) for (const e of p.entries) if (!('redacted' in e) && pred(e)) return e
      throw new Error('no such entry')
    }
    const stranger = Wallet.createRandom()
    const resign = async (b: EvidenceBundle, w: Wallet) => ({ ...b, signer: w.address, signature: await w.signMessage(getBytes(bundleDigest({ ...b, signer: w.address }))) })
    const cases: { name: string; bundle: () => Promise<EvidenceBundle> | EvidenceBundle; record: RegExp }[] = [
      { name: 'an entry field', bundle: () => { const b = clone(byTopic); const e = firstWith(b, (x) => x.entry.kind === 'publish'); e.entry.clientId = 'someone-else'; return b }, record: /^entry seq \d+ .*altered/ },
      { name: 'an entry field, re-signed by the reporter key (the operator)', bundle: () => { const b = clone(whole); firstWith(b, (x) => x.entry.outcome === 'deny').entry.outcome = 'allow'; return resign(b, new Wallet(K[5]!)) }, record: /^entry seq \d+ .*altered/ },
      { name: 'a salt', bundle: () => { const b = clone(whole); firstWith(b, () => true).salt = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { name: 'a proof sibling', bundle: () => { const b = clone(byClient); const e = firstWith(b, (x) => x.siblings.length > 0); e.siblings[0] = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { name: "an anchor's tx hash", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.txHash = hexlify(randomBytes(32)); return b }, record: /^anchor of .*not on this chain/ },
      { name: "an anchor's block hash", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.blockHash = hexlify(randomBytes(32)); return b }, record: /^anchor of .*hash/ },
      { name: "an anchor's log index", bundle: () => { const b = clone(whole); b.periods[0]!.anchor.ref.logIndex += 7; return b }, record: /^anchor of .*no log at index/ },
      { name: "an anchor's root", bundle: () => { const b = clone(whole); const p = b.periods.find((x) => x.entries.length > 0)!; p.anchor.root = hexlify(randomBytes(32)); return b }, record: /^entry seq \d+ / },
      { name: 'an in-scope entry dropped (topic)', bundle: () => { const b = clone(byTopic); const p = b.periods.find((x) => x.entries.length > 1)!; p.entries.splice(1, 1); return b }, record: /^entry seq \d+ .*left out/ },
      { name: 'an in-scope entry dropped (client)', bundle: () => { const b = clone(byClient); const p = b.periods.find((x) => x.entries.length > 0)!; p.entries.splice(0, 1); return b }, record: /^entry seq \d+ .*left out/ },
      { name: 'an entry dropped (whole journal)', bundle: () => { const b = clone(whole); const p = b.periods.find((x) => x.entries.length > 1)!; p.entries.pop(); return b }, record: /^entry seq \d+ .*left out/ },
      { name: "a policy event's args", bundle: () => { const b = clone(byTopic); b.policy.find((e) => e.event === 'Granted')!.args.reason = 'emergency override'; return b }, record: /^policy event Granted .*arguments differ/ },
      { name: 'a policy event that is not on chain', bundle: () => { const b = clone(byTopic); const g = clone(b.policy.find((e) => e.event === 'Granted')!); g.ref.txHash = hexlify(randomBytes(32)); b.policy.push(g); return b }, record: /^policy event Granted .*not on this chain/ },
      { name: 'a policy event left out', bundle: () => { const b = clone(byTopic); b.policy = b.policy.filter((e) => e.event !== 'Granted' || e.args.reason !== 'nurse station'); return b }, record: /^policy event Granted .*leaves it out/ },
      { name: "a summary's counts", bundle: () => { const b = clone(whole); const s = b.summaries.find((e) => e.event === 'SensitiveReport')!; s.args.received = (s.args.received as string[]).map(() => '0'); return b }, record: /^summary SensitiveReport .*arguments differ/ },
      { name: 'the signature', bundle: () => { const b = clone(whole); b.signature = b.signature.slice(0, 10) + (b.signature[10] === 'a' ? 'b' : 'a') + b.signature.slice(11); return b }, record: /^signature/ },
      { name: 're-signed by a key that is not the reporter', bundle: () => resign(clone(whole), new Wallet(stranger.privateKey)), record: /^signature: is by/ },
    ]
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async (c) => {
          const { run, result } = await check(await c.bundle())
          assert.equal(run.code, 7, `${c.name}: exit ${run.code}\n${run.stderr}`)
          assert.equal(result.ok, false)
          assert.match(result.firstFailure?.message ?? '', c.record, `${c.name}: ${result.firstFailure?.message}`)
          assert.ok(oneLine(run.stderr).includes(result.firstFailure!.record), `${c.name}: stderr names the record`)
        }),
      )
    }
    // The bundle is one canonical JSON document: re-encoding it changes nothing.
    assert.equal(canonicalJson(whole), readFileSync(join(cwd, 'whole.json'), 'utf8').trimEnd())
  })
})
