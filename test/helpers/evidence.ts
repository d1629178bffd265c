/**
 * One real evidence run, shared by test/e2e/evidence.test.ts and scripts/evidence-vectors.ts: anvil with the
 * contract, mosquitto, `flytrap proxy start` (built binary) with a journal, a 2 s period and a registered
 * reporter (anvil dev key #5); grants (one re-grant with a private reason, its opening in the run directory's
 * .flytrap/reasons.jsonl), publishes, a subscribe, a refused access and a sensitive topic; then it
 * waits until every period with entries is anchored and the sensitive report is on chain, and stops the proxy.
 * `exportBundle` runs `flytrap audit export` on that journal.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Wallet } from 'ethers'
import type { MqttClient } from 'mqtt'
import { ANVIL_DEV_KEYS } from '../../src/lib/dev/anvil.js'
import { commitReason } from '../../src/lib/chain/reasons.js'
import { appendReason } from '../../src/lib/config/reasons.js'
import { startMosquitto, type MosquittoHandle } from '../../src/lib/dev/mosquitto.js'
import { readRecords } from '../../src/lib/audit/journal-files.js'
import type { EvidenceBundle } from '../../src/lib/audit/evidence/format.js'
import { chainFixture, type ChainFixture } from './chain.js'
import { runCli, spawnCli, tempCwd, type CliRun, type LongCli } from './cli.js'
import { connectWhenReady, publishCode, subscribeCodes } from './mqtt.js'
import { sleep, waitFor } from './wait.js'
import { topicArgs } from './topics.js'

export const PERIOD_MS = 2_000
export const K = ANVIL_DEV_KEYS
export const addr = (i: number) => new Wallet(K[i]!).address
export const VALVE = addr(1)
export const NURSE = addr(2)
export const ROGUE = addr(4)
export const REPORTER = addr(5)
/** The clear text of the private reason of the nurse's re-grant on ward/vitals. */
export const PRIVATE_REASON = 'night shift, patient P-1'

export interface EvidenceRun {
  chain: ChainFixture
  cwd: string
  dataDir: string
  t0: number
  /** `flytrap <args>` without FLYTRAP_* variables, in `dir` (default: the run's directory). */
  flytrap(args: string[], dir?: string): Promise<CliRun>
  /** `audit export` to `<cwd>/<name>` (or an absolute path); returns the bundle as written. */
  exportBundle(out: string, extra: string[]): Promise<{ bundle: EvidenceBundle; text: string; result: { notes: string[]; version: number; scope: { from: string; to: string } } }>
  /** `audit forget <subject>` with the reporter key, then the proxy once more until the erasure record's period is anchored. */
  forget(subject: string): Promise<void>
  close(): Promise<void>
}

const cleanEnv = (): Record<string, string | undefined> => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('FLYTRAP_')).map((k) => [k, undefined]))

export async function evidenceRun(): Promise<EvidenceRun> {
  const t0 = Date.now()
  let chain: ChainFixture | undefined
  let mosquitto: MosquittoHandle | undefined
  let proxy: LongCli | undefined
  const clients = new Set<MqttClient>()
  const cwd = tempCwd('flytrap-evidence-')
  const dataDir = join(cwd, 'proxy-data')
  const flytrap = (args: string[], dir = cwd) => runCli(args, { cwd: dir, env: cleanEnv(), timeoutMs: 30_000 })
  const close = async () => {
    for (const c of clients) c.end(true)
    await proxy?.stop('SIGKILL', 5_000)
    await mosquitto?.stop()
    await chain?.close()
    rmSync(cwd, { recursive: true, force: true })
  }
  try {
    chain = await chainFixture()
    const ch = chain
    mosquitto = await startMosquitto()
    const owner = ch.as(0)
    await owner.addReporter(REPORTER, 'proxy eu-1')
    await owner.addTopic(topicArgs('ward/vitals', { sensitive: true, reason: 'patient data' }))
    await owner.allow('ward/vitals', VALVE, 1, 0, 'bedside monitor 7')
    await owner.allow('ward/vitals', NURSE, 2, 0, 'nurse station')
    // A re-grant with a private reason (what `flytrap allow --reason-private` does): the opening in reasons.jsonl first.
    const priv = commitReason(PRIVATE_REASON)
    await appendReason({ v: 1, commitment: priv.commitment, salt: priv.salt, text: PRIVATE_REASON, chainId: ch.chainId, contract: ch.address, topic: 'ward/vitals', client: NURSE.toLowerCase(), action: 'allow', at: Date.now() }, join(cwd, '.flytrap'))
    await owner.allow('ward/vitals', NURSE, 2, 0, priv.onChain)
    await owner.addTopic(topicArgs('plant/valve', { reason: 'valve telemetry' }))
    await owner.allow('plant/valve', VALVE, 1, 0, 'valve controller')
    const conn = ['--rpc', ch.rpcUrl, '--contract', ch.address, '--from-block', String(ch.deployBlock)]

    const startProxy = async () => {
      proxy = spawnCli(
        [
          'proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', mosquitto!.url, ...conn,
          '--poll-interval', '200ms', '--period', '2s', '--data-dir', dataDir, '--reporter-key', K[5]!,
          '--ban-threshold', '50', '--shutdown-grace', '1s', '--auth-workers', '0', '--log-level', 'warn',
        ],
        { cwd },
      )
      const first = await proxy.firstJsonLine<{ listening: { port: number }[] }>(30_000)
      return `mqtt://127.0.0.1:${first.listening[0]!.port}`
    }
    /** Waits until every period holding an entry is anchored (and, with `sensitive`, a sensitive report is on chain). */
    const anchored = async (sensitive: boolean) => {
      const times: number[] = []
      for await (const { record } of readRecords(dataDir)) times.push(record.t)
      const periods = new Set(times.map((t) => Math.floor(t / PERIOD_MS)))
      await waitFor(
        async () => {
          const evs = owner.parseLogs(await ch.provider.getLogs({ address: ch.address, fromBlock: ch.deployBlock, toBlock: 'latest' }))
          const covered = evs.filter((e) => e.name === 'Anchored').map((e) => [Number(e.args[1]) * 1000, Number(e.args[2]) * 1000] as const)
          return [...periods].every((k) => covered.some(([f, t]) => f <= k * PERIOD_MS && k * PERIOD_MS < t)) && (!sensitive || evs.some((e) => e.name === 'SensitiveReport'))
        },
        20_000,
        'anchors of every period with entries',
      )
    }
    const url = await startProxy()
    const connect = async (key: number, clientId: string) => {
      const c = await connectWhenReady({ key: K[key]!, url, clientId }, ch)
      clients.add(c)
      return c
    }
    const valve = await connect(1, 'valve-ctl')
    const nurse = await connect(2, 'nurse-station')
    const rogue = await connect(4, 'rogue-7')
    assert.deepEqual(await subscribeCodes(nurse, 'ward/vitals'), [1])
    assert.notEqual((await subscribeCodes(rogue, 'ward/vitals'))[0], 1, 'the refused access')
    for (let i = 0; i < 3; i++) assert.equal(await publishCode(valve, 'ward/vitals', `pulse ${i}`), 0)
    // The next period: a bundle spans several anchored periods.
    await sleep(PERIOD_MS - (Date.now() % PERIOD_MS) + 20)
    assert.equal(await publishCode(valve, 'plant/valve', 'open'), 0)
    assert.equal(await publishCode(valve, 'ward/vitals', 'pulse 3'), 0)
    await sleep(200)
    for (const c of clients) c.end(true)
    clients.clear()

    await anchored(true)
    await proxy!.stop('SIGTERM', 10_000)
    proxy = undefined

    return {
      chain: ch,
      cwd,
      dataDir,
      t0,
      flytrap,
      exportBundle: async (out, extra) => {
        const file = resolve(cwd, out)
        const r = await flytrap(['audit', 'export', '--from', String(Math.floor(t0 / 1000)), '--to', 'now', '--data-dir', dataDir, '--key', K[5]!, '--out', file, '--json', ...conn, ...extra])
        assert.equal(r.code, 0, `export ${extra.join(" ")}: ${r.stderr}${r.stdout}`)
        const text = readFileSync(file, 'utf8')
        return { bundle: JSON.parse(text) as EvidenceBundle, text, result: r.json() }
      },
      forget: async (subject) => {
        const r = await flytrap(['audit', 'forget', subject, '--reason', 'GDPR art. 17(1)(b)', '--requested-by', 'data subject, ticket 4711', '--yes', '--json', '--data-dir', dataDir, '--key', K[5]!, ...conn])
        assert.equal(r.code, 0, `forget: ${r.stderr}`)
        await startProxy()
        await anchored(false)
        await proxy!.stop('SIGTERM', 10_000)
        proxy = undefined
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
