/**
 * Nothing personal in clear on a public chain (issue 11, item 5), attacked as an outsider who reads the chain:
 * every log the contract emitted and every transaction's input. Real anvil (chain id 11155111, a public
 * testnet's, so the CLI treats it as public), real mosquitto, `flytrap proxy start` as its own process with a
 * 2 s period, devices with real credentials, grants made through the CLI with clear and private reasons.
 *
 * - default deployment: sensitive reports are commitments; no sensitive report (and no reporter transaction)
 *   carries a device's 20 address bytes; the only logs that do are the grants themselves (Granted/Revoked);
 * - `--reason-private`: the reason's bytes are in no log and no transaction input; its commitment opens with
 *   the owner's reasons.jsonl, and `audit report` / the web index show it as committed (disclosed or not);
 * - clear reasons on a public chain warn on stderr (not on --json's stdout); a permissioned chain does not;
 * - `contract deploy --public-sensitive-lists`: the clear form (SensitiveReportClear, addresses listed) is used.
 * Needs dist/ (npm run build). The tests run in order and share the chain.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { hexlify, Interface, keccak256, toUtf8Bytes, Wallet, type Log } from 'ethers'
import type { MqttClient } from 'mqtt'
import { abi, connect, FlyTrapClient } from '../../src/lib/chain/client.js'
import { topicId } from '../../src/lib/chain/codec.js'
import { reasonCommitment } from '../../src/lib/chain/reasons.js'
import { readReasons } from '../../src/lib/config/reasons.js'
import { ANVIL_DEV_KEYS, startAnvil, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import type { AuditReport } from '../../src/lib/audit/report.js'
import { ChainIndex } from '../../src/lib/web/chain-index.js'
import { runCli, spawnCli, tempCwd, type CliRun, type LongCli } from '../helpers/cli.js'
import { connectWhenReady, inbox, publishCode, subscribeCodes } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'

const PUBLIC_TESTNET = 11155111 // Sepolia's chain id: public, as far as the CLI knows
const K = ANVIL_DEV_KEYS
const addr = (i: number) => new Wallet(K[i]!).address
const OWNER = 0
const DEVICE = 1 // a wearable: publishes on ward/vitals
const NURSE = 2 // receives ward/vitals
const REPORTER = 5
const TOPIC = 'ward/vitals'
const SECRET = 'wearable of patient P-1, cardiology ward, diagnosis I48.0'
const SECRET_REVOKE = 'patient P-1 discharged to home care'
const CLEAR = 'nurse station, ward 3'
const iface = new Interface(abi)
const lc = (s: string) => s.toLowerCase()
const bytesOf = (text: string) => hexlify(toUtf8Bytes(text)).slice(2)
/** An event's topic0 (a placeholder for an event this ABI does not have, so a scan by name still runs). */
const EVENT = (name: string) => iface.getEvent(name)?.topicHash ?? `0x${'ff'.repeat(32)}`
const nameOf = (l: Log) => iface.parseLog({ topics: [...l.topics], data: l.data })?.name ?? '?'
/** A log as an outsider sees it: all its bytes (topics and data), hex, lower-case. */
const rawOf = (l: Log) => lc([...l.topics, l.data].join(''))

describe('privacy on a public chain (proxy CLI, anvil, mosquitto)', () => {
  let anvil: AnvilHandle
  let provider: Awaited<ReturnType<typeof connect>>['provider']
  let mosquitto: MosquittoHandle
  let cwd: string
  const procs = new Set<LongCli>()
  const clients = new Set<MqttClient>()
  const cleanEnv = (): Record<string, string | undefined> => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('FLYTRAP_')).map((k) => [k, undefined]))
  const flytrap = (args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> =>
    runCli([...args, '--rpc', anvil.rpcUrl], { cwd: o.cwd ?? cwd, env: { ...cleanEnv(), ...o.env }, timeoutMs: 60_000 })
  const ok = (r: CliRun, what: string) => assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`)

  interface Deployed {
    address: string
    block: number
    /** Results of the grant commands, by label. */
    runs: Record<string, CliRun>
  }

  /** Deploys through the CLI and sets the deployment up as an owner would: reporter, sensitive topic, grants. */
  async function deploy(extra: string[]): Promise<Deployed> {
    const d = await flytrap(['contract', 'deploy', '--key', K[OWNER]!, '--json', ...extra])
    ok(d, 'contract deploy')
    const res = d.json<{ address: string; block: number; publicSensitiveLists: boolean }>()
    const conn = ['--contract', res.address, '--key', K[OWNER]!]
    const runs: Record<string, CliRun> = { deploy: d }
    runs.reporter = await flytrap(['contract', 'reporter', 'add', addr(REPORTER), '--reason', 'ward proxy', ...conn, '--json'])
    runs.topic = await flytrap(['topic', 'add', TOPIC, '--sensitive', ...conn, '--json'])
    runs.private = await flytrap(['topic', 'allow', TOPIC, addr(DEVICE), '--pub', '--reason', SECRET, '--reason-private', ...conn, '--json'])
    runs.clear = await flytrap(['topic', 'allow', TOPIC, addr(NURSE), '--sub', '--reason', CLEAR, ...conn, '--json'])
    for (const [k, r] of Object.entries(runs)) ok(r, k)
    return { address: res.address, block: res.block, runs }
  }

  /** Runs the proxy against a deployment: the device publishes, the nurse receives, until a sensitive report is on chain. */
  async function traffic(d: Deployed, dataDir: string): Promise<void> {
    const cli = spawnCli(
      ['proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', mosquitto.url, '--rpc', anvil.rpcUrl, '--contract', d.address, '--from-block', String(d.block), '--poll-interval', '200ms', '--period', '2s', '--data-dir', dataDir, '--reporter-key', K[REPORTER]!, '--shutdown-grace', '1s', '--auth-workers', '0', '--log-level', 'error'],
      { cwd },
    )
    procs.add(cli)
    try {
      const first = await cli.firstJsonLine<{ listening: { port: number }[] }>(30_000)
      const url = `mqtt://127.0.0.1:${first.listening[0]!.port}`
      const chain = { chainId: PUBLIC_TESTNET, address: d.address }
      const conn = async (key: number, clientId: string) => {
        const c = await connectWhenReady({ key: K[key]!, url, clientId }, chain)
        clients.add(c)
        return c
      }
      const device = await conn(DEVICE, 'wearable-1')
      const nurse = await conn(NURSE, 'nurse-station')
      const got = inbox(nurse)
      assert.deepEqual(await subscribeCodes(nurse, TOPIC), [1])
      const codes = await Promise.all(Array.from({ length: 5 }, (_, i) => publishCode(device, TOPIC, `pulse ${i}`)))
      assert.deepEqual(new Set(codes), new Set([0]))
      await waitFor(() => got.messages.length === 5, 5_000, 'the nurse receives the five readings')
      const sensitive = [EVENT('SensitiveReport'), EVENT('SensitiveReportClear')]
      await waitFor(async () => (await provider.getLogs({ address: d.address, fromBlock: d.block, toBlock: 'latest', topics: [sensitive, topicId(TOPIC)] })).length > 0, 20_000, 'a sensitive report on chain')
    } finally {
      for (const c of clients) c.end(true)
      clients.clear()
      const stopped = await cli.stop('SIGTERM', 10_000)
      procs.delete(cli)
      assert.equal(stopped.hung, false)
    }
  }

  /** Every log of the contract, and every transaction's input on the chain, since a block. */
  async function everything(address: string, fromBlock: number): Promise<{ logs: Log[]; inputs: { from: string; data: string }[] }> {
    const logs = await provider.getLogs({ address, fromBlock, toBlock: 'latest' })
    const head = await provider.getBlockNumber()
    const inputs: { from: string; data: string }[] = []
    for (let n = fromBlock; n <= head; n++) {
      const b = await provider.getBlock(n, true)
      for (const tx of b?.prefetchedTransactions ?? []) inputs.push({ from: lc(tx.from), data: lc(tx.data) })
    }
    return { logs, inputs }
  }

  let plain: Deployed
  let clearLists: Deployed

  before(async () => {
    anvil = await startAnvil({ chainId: PUBLIC_TESTNET })
    provider = (await connect(anvil.rpcUrl)).provider
    mosquitto = await startMosquitto()
    cwd = tempCwd('flytrap-privacy-e2e-')
  })

  after(async () => {
    for (const c of clients) c.end(true)
    for (const p of procs) await p.stop('SIGKILL', 5_000)
    provider?.destroy()
    await mosquitto?.stop()
    await anvil?.stop()
    if (cwd) rmSync(cwd, { recursive: true, force: true })
  })

  test('a default deployment: traffic on a sensitive topic, one private and one clear grant reason', async () => {
    plain = await deploy([])
    assert.equal(plain.runs.deploy!.json<{ publicSensitiveLists: boolean }>().publicSensitiveLists, false)
    assert.equal(await new FlyTrapClient(plain.address, provider).publicSensitiveLists(), false)
    await traffic(plain, join(cwd, 'data-plain'))
    // A revoke with a private reason, after the traffic.
    ok(await flytrap(['topic', 'revoke', TOPIC, addr(DEVICE), '--reason', SECRET_REVOKE, '--reason-private', '--contract', plain.address, '--key', K[OWNER]!, '--json']), 'topic revoke')
  })

  test('an outsider reading every log and every transaction finds no device address in any sensitive report', async () => {
    const { logs, inputs } = await everything(plain.address, plain.block)
    const devices = [addr(DEVICE), addr(NURSE)].map((a) => lc(a).slice(2))
    const naming = new Set<string>()
    for (const l of logs) {
      for (const d of devices) if (rawOf(l).includes(d)) naming.add(nameOf(l))
    }
    // The grants name their client by design (who may access a topic is the public policy); nothing else does.
    assert.deepEqual([...naming].sort(), ['Granted', 'Revoked'], 'logs carrying a device address')
    const reports = logs.filter((l) => l.topics[0] === EVENT('SensitiveReport'))
    assert.ok(reports.length > 0, 'the period was reported')
    assert.equal(logs.filter((l) => l.topics[0] === EVENT('SensitiveReportClear')).length, 0, 'no clear lists on a default deployment')
    for (const l of reports) for (const d of devices) assert.ok(!rawOf(l).includes(d), `a ${nameOf(l)} log carries ${d}`)
    const reporterTxs = inputs.filter((t) => t.from === lc(addr(REPORTER)))
    assert.ok(reporterTxs.length >= reports.length)
    for (const t of reporterTxs) for (const d of devices) assert.ok(!t.data.includes(d), `a reporter transaction's input carries ${d}`)
    // The counts are there: one publisher, one receiver, five each way, in the periods reported.
    const parsed = reports.map((l) => iface.parseLog({ topics: [...l.topics], data: l.data })!.args)
    assert.equal(parsed.reduce((n, a) => n + Number(a.published), 0), 5)
    assert.equal(parsed.reduce((n, a) => n + Number(a.received), 0), 5)
    for (const a of parsed) assert.match(String(a.membersRoot), /^0x[0-9a-f]{64}$/)
  })

  test('the journal opens the commitment: `audit report` with the data dir names the members, the chain alone does not', async () => {
    const common = ['--from', '1h', '--to', 'now', '--contract', plain.address, '--from-block', String(plain.block), '--format', 'json', '--json']
    const withJournal = (await flytrap(['audit', 'report', ...common, '--data-dir', join(cwd, 'data-plain')])).json<AuditReport>()
    const rows = withJournal.rows.filter((r) => r.event === 'SensitiveReport')
    assert.ok(rows.some((r) => r.client === null && /members committed, root 0x[0-9a-f]{64}; opened from the journal/.test(r.detail ?? '')), JSON.stringify(rows))
    assert.ok(rows.some((r) => r.client === addr(DEVICE) && /^published \d+/.test(r.detail ?? '')))
    assert.ok(rows.some((r) => r.client === addr(NURSE) && /^received \d+/.test(r.detail ?? '')))
    const bare = (await flytrap(['audit', 'report', ...common], { cwd: tempCwd('flytrap-privacy-outsider-') })).json<AuditReport>()
    const chainOnly = bare.rows.filter((r) => r.event === 'SensitiveReport')
    assert.ok(chainOnly.length > 0 && chainOnly.every((r) => r.client === null), 'without the journal nobody is named')
  })

  test('a --reason-private reason is nowhere on chain; its commitment opens with reasons.jsonl; reports show it as committed', async () => {
    const { logs, inputs } = await everything(plain.address, plain.block)
    for (const [label, text] of [['allow', SECRET], ['revoke', SECRET_REVOKE]] as const) {
      const needle = bytesOf(text)
      for (const l of logs) assert.ok(!lc(l.data).includes(needle), `the ${label} reason is in a ${nameOf(l)} log`)
      for (const t of inputs) assert.ok(!t.data.includes(needle), `the ${label} reason is in a transaction's input`)
      // Nor a distinctive part of it (the patient id with its context).
      const part = bytesOf(text.slice(0, 20))
      assert.ok(!logs.some((l) => lc(l.data).includes(part)) && !inputs.some((t) => t.data.includes(part)))
    }
    // The search works: the clear reason is found.
    assert.ok(logs.some((l) => lc(l.data).includes(bytesOf(CLEAR))), 'the clear reason is on chain, as the owner chose')

    // On chain: exactly commit:0x<keccak256(0x07 || salt || utf8(reason))>, the salt and text in reasons.jsonl.
    const granted = logs.filter((l) => l.topics[0] === EVENT('Granted')).map((l) => iface.parseLog({ topics: [...l.topics], data: l.data })!.args)
    const deviceGrant = granted.find((a) => lc(String(a.client)) === lc(addr(DEVICE)))!
    const m = /^commit:(0x[0-9a-f]{64})$/.exec(String(deviceGrant.reason))
    assert.ok(m, `the grant's reason is a commitment: ${String(deviceGrant.reason)}`)
    const file = join(cwd, '.flytrap', 'reasons.jsonl')
    assert.ok(existsSync(file))
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { commitment: string; salt: string; text: string; action: string; topic: string; client: string })
    const line = lines.find((l) => l.commitment === m[1])!
    assert.deepEqual([line.text, line.action, line.topic, line.client], [SECRET, 'allow', TOPIC, lc(addr(DEVICE))])
    assert.equal(reasonCommitment(line.salt, SECRET), m[1])
    assert.equal(keccak256(`0x07${line.salt.slice(2)}${bytesOf(SECRET)}`), m[1], 'the documented encoding')
    assert.ok(lines.some((l) => l.text === SECRET_REVOKE && l.action === 'revoke'))
    const allowResult = plain.runs.private!.json<{ reasonCommitment: string }>()
    assert.equal(allowResult.reasonCommitment, m[1])

    // audit report: disclosed (and checked) where the owner's file is; "committed, not disclosed" elsewhere.
    const common = ['--from', '1h', '--to', 'now', '--contract', plain.address, '--from-block', String(plain.block), '--client', addr(DEVICE), '--format', 'json', '--json']
    const owner = (await flytrap(['audit', 'report', ...common])).json<AuditReport>()
    const ownRow = owner.rows.find((r) => r.event === 'Granted')!
    assert.equal(ownRow.reason, `${SECRET} [committed ${m[1]}; disclosed, checks]`)
    const outsider = (await flytrap(['audit', 'report', ...common], { cwd: tempCwd('flytrap-privacy-outsider-') })).json<AuditReport>()
    assert.equal(outsider.rows.find((r) => r.event === 'Granted')!.reason, `[committed ${m[1]}; not disclosed]`)
    assert.ok(!JSON.stringify(outsider).includes(SECRET))

    // The web index (audit serve's): the commitment, disclosed only with the file.
    for (const [reasons, disclosed] of [[readReasons(join(cwd, '.flytrap')), true], [new Map(), false]] as const) {
      const index = await ChainIndex.create({ client: new FlyTrapClient(plain.address, provider), deployBlock: plain.block, pollIntervalMs: 0, reasons })
      try {
        const ev = index.events({ types: new Set(['Granted']) }).find((e) => e.client === addr(DEVICE))!
        assert.deepEqual([ev.reasonCommitment, ev.reasonDisclosed, ev.reason?.includes(SECRET) ?? false], [m[1], disclosed, disclosed])
        const s = index.sensitive(TOPIC)
        assert.ok(s.length > 0 && s.every((r) => r.form === 'committed' && r.publishers.length === 0 && r.receivers.length === 0 && r.membersRoot !== null))
      } finally {
        index.close()
      }
    }
  })

  test('clear reasons on a public chain warn on stderr (never on --json stdout); private ones and permissioned chains do not', async () => {
    const clear = plain.runs.clear!
    assert.match(clear.stderr, /warning: chain 11155111 is public: the reason "nurse station, ward 3" will be readable by anyone, permanently/)
    assert.doesNotThrow(() => clear.json(), 'stdout is the JSON result only')
    assert.ok(!clear.stdout.includes('warning'))
    assert.ok(!plain.runs.private!.stderr.includes('warning'), plain.runs.private!.stderr)
    assert.match(plain.runs.reporter!.stderr, /warning: chain 11155111 is public/, 'any reason sent in clear')
    const conn = ['--contract', plain.address, '--key', K[OWNER]!, '--json']
    const permissioned = await flytrap(['topic', 'allow', TOPIC, addr(7), '--sub', '--reason', 'lab system', ...conn], { env: { FLYTRAP_PERMISSIONED_CHAINS: `1,${PUBLIC_TESTNET}` } })
    ok(permissioned, 'allow on a chain listed as permissioned')
    assert.ok(!permissioned.stderr.includes('warning'), permissioned.stderr)
    // Joining an open topic puts the member's address and payment on chain: said on a public chain.
    ok(await flytrap(['topic', 'add', 'lobby/news', '--open', '--contract', plain.address, '--key', K[OWNER]!, '--json']), 'topic add --open')
    const joined = await flytrap(['topic', 'join', 'lobby/news', '--sub', '--key', K[8]!, '--contract', plain.address, '--json'])
    ok(joined, 'topic join')
    assert.match(joined.stderr, /warning: chain 11155111 is public: that your address joined lobby\/news, and what it paid, will be readable by anyone, permanently/)
    assert.doesNotThrow(() => joined.json())
    // --reason-private without a reason: a usage error before any network call.
    const bad = await runCli(['topic', 'allow', TOPIC, addr(7), '--sub', '--reason-private', '--rpc', 'http://127.0.0.1:9', '--contract', plain.address, '--key', K[OWNER]!], { cwd, env: cleanEnv() })
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /--reason-private needs a --reason/)
  })

  test('with --public-sensitive-lists (permissioned chains) the clear form is used, and says so', async () => {
    clearLists = await deploy(['--public-sensitive-lists', '--force'])
    assert.match(clearLists.runs.deploy!.stderr, /warning: chain 11155111 is public: with --public-sensitive-lists/)
    assert.equal(await new FlyTrapClient(clearLists.address, provider).publicSensitiveLists(), true)
    await traffic(clearLists, join(cwd, 'data-clear'))
    const { logs } = await everything(clearLists.address, clearLists.block)
    const clear = logs.filter((l) => l.topics[0] === EVENT('SensitiveReportClear'))
    assert.ok(clear.length > 0, 'clear reports')
    assert.equal(logs.filter((l) => l.topics[0] === EVENT('SensitiveReport')).length, 0, 'the reporter picked the form from the contract')
    for (const d of [addr(DEVICE), addr(NURSE)]) assert.ok(clear.some((l) => rawOf(l).includes(lc(d).slice(2))), `${d} listed in clear`)
  })
})
