/**
 * `flytrap bench revoke`: how long a revocation takes to reach a live session. Starts anvil, the contract and
 * mosquitto, and one real `flytrap proxy start` (its own process) per mode: `subscription` (--rpc-ws, anvil's
 * WebSocket) and `polling` (--poll-interval alone). Each sample is an MQTT 5 session whose will is on a topic
 * it may publish to; revoking that right ends the session (the proxy sends DISCONNECT 0x87, see
 * proxy/live-checks.ts). The time is from the signed revoke transaction leaving for the node to the client
 * reading the DISCONNECT. Modes are interleaved sample by sample, with a random pause of up to one poll interval
 * (or block interval) after each, so the revokes fall on a uniformly random phase of the poll timer and blocks. With `blockTimeSec`, anvil mines on an interval (the wait for the block is included).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Interface, Wallet } from 'ethers'
import { abi } from '../chain/artifacts/FlyTrap.js'
import { connect, deployFlyTrap, FlyTrapClient } from '../chain/client.js'
import { signCredential, toUserProperties } from '../auth/index.js'
import { ANVIL_DEV_KEYS, startAnvil } from '../dev/anvil.js'
import { startMosquitto } from '../dev/mosquitto.js'
import { spawnProxy, type SpawnedProxy } from './bench-stack.js'
import { RawClient } from './raw-client.js'
import { quantile } from './stats.js'

export type RevokeMode = 'subscription' | 'polling'
export const REVOKE_MODES: readonly RevokeMode[] = ['subscription', 'polling']

export interface RevokeBenchOptions {
  samples: number
  /** The proxies' --poll-interval (ms): the whole story in polling mode, the backstop in subscription mode. */
  pollIntervalMs: number
  /** Interval mining (anvil --block-time), seconds; automine without. */
  blockTimeSec?: number
  modes?: readonly RevokeMode[]
  onProgress?: (text: string) => void
}

export interface RevokeModeSummary {
  n: number
  /** Milliseconds from the revoke transaction to the client's DISCONNECT. */
  min: number
  p50: number
  p95: number
  max: number
  mean: number
  /** Samples that ended with an MQTT DISCONNECT (the rest: the socket closed without one). */
  disconnects: number
  samplesMs: number[]
}

export interface RevokeBenchResult {
  samples: number
  pollIntervalMs: number
  /** null: automine (a block per transaction). */
  blockTimeSec: number | null
  modes: Partial<Record<RevokeMode, RevokeModeSummary>>
}

const TOPIC = 'bench/revoke'
const IFACE = new Interface(abi)
const PUB = 1

export async function runRevokeBench(o: RevokeBenchOptions): Promise<RevokeBenchResult> {
  const step = o.onProgress ?? (() => {})
  const modes = o.modes ?? REVOKE_MODES
  const cleanup: (() => Promise<void>)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'flytrap-bench-revoke-'))
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
  try {
    step('starting anvil and deploying the contract')
    const anvil = await startAnvil()
    cleanup.push(() => anvil.stop())
    const { provider, chainId } = await connect(anvil.rpcUrl, { pollingIntervalMs: 100 })
    cleanup.push(async () => provider.destroy())
    const owner = new Wallet(ANVIL_DEV_KEYS[0], provider)
    const d = await deployFlyTrap(owner)
    const client = new FlyTrapClient(d.address, owner)
    await client.addTopic({ name: TOPIC, pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'benchmark' })
    // One device per sample and mode, granted up front (automine), so a sample is one transaction: the revoke.
    const devices: Record<string, Wallet[]> = {}
    for (const m of modes) {
      devices[m] = Array.from({ length: o.samples }, () => Wallet.createRandom() as unknown as Wallet)
      step(`granting ${o.samples} devices for ${m}`)
      for (const w of devices[m]!) await client.allow(TOPIC, w.address, PUB, 0, 'benchmark')
    }
    const rpc = async (method: string, params: unknown[]): Promise<unknown> => {
      const res = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
      const j = (await res.json()) as { result?: unknown; error?: { message: string } }
      if (j.error) throw new Error(`${method}: ${j.error.message}`)
      return j.result
    }
    if (o.blockTimeSec) await rpc('evm_setIntervalMining', [o.blockTimeSec])

    step('starting mosquitto')
    const mosquitto = await startMosquitto()
    cleanup.push(() => mosquitto.stop())

    const proxies: Partial<Record<RevokeMode, SpawnedProxy>> = {}
    for (const m of modes) {
      step(`starting the ${m} proxy`)
      let live: () => void = () => {}
      const subscribed = new Promise<void>((r) => (live = r))
      let out = ''
      const p = await spawnProxy(
        [
          '--listen', '127.0.0.1:0', '--broker', mosquitto.url,
          '--rpc', anvil.rpcUrl, '--contract', d.address, '--from-block', String(d.block),
          '--poll-interval', `${o.pollIntervalMs}ms`, '--data-dir', join(dir, m), '--log-level', 'info',
          ...(m === 'subscription' ? ['--rpc-ws', anvil.rpcUrl.replace(/^http/, 'ws')] : []),
        ],
        {
          onStderr: (t) => {
            out = (out + t).slice(-4_000)
            if (/policy sync mode: subscription/.test(out)) live()
          },
        },
      )
      cleanup.push(() => p.stop())
      if (m === 'subscription') await timeout(subscribed, 15_000, 'the subscription proxy never went live (eth_subscribe)')
      proxies[m] = p
    }

    let nonce = await provider.getTransactionCount(owner.address, 'pending')
    const samples: Record<string, { ms: number; disconnect: boolean }[]> = Object.fromEntries(modes.map((m) => [m, []]))
    for (let i = 0; i < o.samples; i++) {
      step(`sample ${i + 1}/${o.samples}`)
      for (const m of shuffle([...modes])) {
        const device = devices[m]![i]!
        const proxy = proxies[m]!
        const port = proxy.listening.find((l) => !l.tls)!.port
        const c = await RawClient.open({ host: '127.0.0.1', port })
        const clientId = `bench-revoke-${m}-${i}`
        const cred = signCredential({ signer: device.privateKey, chainId: BigInt(chainId), contract: d.address, clientId, expiresAt: Math.floor(Date.now() / 1000) + 3_600 })
        const rc = await c.connect({ clientId, will: { topic: TOPIC, payload: Buffer.from('gone'), qos: 0, retain: false }, properties: { userProperties: toUserProperties(cred) } })
        if (rc !== 0) throw new Error(`${m}: the proxy refused the session of sample ${i} (reason 0x${rc.toString(16)})`)
        const ended = c.ended()
        // Signed before the clock starts: the time is the node's and the proxy's, not the signing's.
        const signed = await owner.signTransaction({
          to: d.address, data: IFACE.encodeFunctionData('revoke', [TOPIC, device.address, PUB, 'benchmark']),
          nonce: nonce++, gasLimit: 300_000n, maxFeePerGas: 200n * 10n ** 9n, maxPriorityFeePerGas: 10n ** 9n, chainId, type: 2,
        })
        const t0 = performance.now()
        await rpc('eth_sendRawTransaction', [signed])
        const end = await timeout(ended, o.pollIntervalMs + (o.blockTimeSec ?? 0) * 1000 + 30_000, `${m}: sample ${i} was not disconnected`)
        samples[m]!.push({ ms: end.at - t0, disconnect: end.disconnect })
        c.socket.destroy()
        // A uniformly random phase of the poll timer and of interval mining for the next sample (both just ticked).
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(Math.max(o.pollIntervalMs, (o.blockTimeSec ?? 0) * 1000), 10_000)))
      }
    }
    const out: RevokeBenchResult = { samples: o.samples, pollIntervalMs: o.pollIntervalMs, blockTimeSec: o.blockTimeSec ?? null, modes: {} }
    for (const m of modes) {
      const ms = samples[m]!.map((s) => s.ms)
      out.modes[m] = {
        n: ms.length,
        min: Math.min(...ms),
        p50: quantile(ms, 0.5),
        p95: quantile(ms, 0.95),
        max: Math.max(...ms),
        mean: ms.reduce((a, b) => a + b, 0) / ms.length,
        disconnects: samples[m]!.filter((s) => s.disconnect).length,
        samplesMs: ms,
      }
    }
    return out
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {})
  }
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}
