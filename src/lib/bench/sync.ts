/**
 * `flytrap bench sync`: how long a proxy takes to load a big policy from a local node, and what it holds.
 * Deploys the contract on a fresh anvil, writes the history (N topics, M grants spread over them) in packed
 * blocks (automine off, one JSON-RPC batch of transactions from anvil's unlocked dev account per block), then
 * starts a real `flytrap proxy start` (its own process, against mosquitto) and times its cold start from the
 * proxy's own 'policy loaded' log line; memory is the proxy's resident set once loaded, beside the same proxy
 * on an empty contract.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { hexlify, Interface, randomBytes, Wallet } from 'ethers'
import { abi } from '../chain/artifacts/FlyTrap.js'
import { connect, deployFlyTrap } from '../chain/client.js'
import { ANVIL_DEV_KEYS, startAnvil, stopChild } from '../dev/anvil.js'
import { startMosquitto } from '../dev/mosquitto.js'
import { rssKiB } from './scale.js'

export interface SyncBenchOptions {
  topics: number
  grants: number
  /** Transactions per mined block while writing the history. */
  perBlock?: number
  onProgress?: (text: string) => void
}

export interface SyncBenchResult {
  topics: number
  grants: number
  blocks: number
  /** Writing the history (transactions sent and mined). */
  deploySeconds: number
  /** The proxy's cold start as it logs it: views and logs read, the store built. */
  syncSeconds: number
  /** From spawning the proxy process to its 'policy loaded' line (Node start and the CLI included). */
  processToSyncedSeconds: number
  /** Resident memory of the loaded proxy, and of the same proxy on an empty contract. */
  proxyRssMiB: number
  emptyProxyRssMiB: number
  /** What the policy itself costs: the difference. */
  policyMiB: number
  topicsLoaded: number
  grantsLoaded: number
}

const IFACE = new Interface(abi)

export async function runSyncBench(o: SyncBenchOptions): Promise<SyncBenchResult> {
  const step = o.onProgress ?? (() => {})
  step('starting anvil and deploying the contract')
  const anvil = await startAnvil({ gasLimit: 1_000_000_000 })
  const cleanup: (() => Promise<void>)[] = [() => anvil.stop()]
  try {
    const { provider } = await connect(anvil.rpcUrl, { pollingIntervalMs: 200 })
    cleanup.push(async () => provider.destroy())
    const owner = new Wallet(ANVIL_DEV_KEYS[0], provider)
    const full = await deployFlyTrap(owner)
    const empty = await deployFlyTrap(owner)
    const from = owner.address

    const { blocks, deploySeconds } = await writeHistory(anvil.rpcUrl, full.address, from, o, step)
    const count = Number(await provider.call({ to: full.address, data: IFACE.encodeFunctionData('topicCount', []) }))
    if (count !== o.topics) throw new Error(`the history did not land: ${count} of ${o.topics} topics registered`)

    step('starting mosquitto')
    const mosquitto = await startMosquitto()
    cleanup.push(() => mosquitto.stop())

    step('cold start of a proxy on the empty contract (the baseline)')
    const base = await coldStart({ rpc: anvil.rpcUrl, contract: empty.address, fromBlock: empty.block, broker: mosquitto.url })
    step(`cold start of a proxy on ${o.topics} topics and ${o.grants} grants`)
    const loaded = await coldStart({ rpc: anvil.rpcUrl, contract: full.address, fromBlock: full.block, broker: mosquitto.url })
    return {
      topics: o.topics,
      grants: o.grants,
      blocks,
      deploySeconds,
      syncSeconds: loaded.ms / 1000,
      processToSyncedSeconds: loaded.wallMs / 1000,
      proxyRssMiB: loaded.rssKiB / 1024,
      emptyProxyRssMiB: base.rssKiB / 1024,
      policyMiB: (loaded.rssKiB - base.rssKiB) / 1024,
      topicsLoaded: loaded.topics,
      grantsLoaded: loaded.grants,
    }
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {})
  }
}

/**
 * Writes the history: N topics then M grants (random members) spread over them, `perBlock` transactions per
 * mined block (automine off, one JSON-RPC batch from the unlocked dev account `from` per block).
 */
export async function writeHistory(rpcUrl: string, contract: string, from: string, o: { topics: number; grants: number; perBlock?: number }, step: (text: string) => void = () => {}): Promise<{ blocks: number; deploySeconds: number }> {
  const perBlock = o.perBlock ?? 250
  const rpc = async (batch: { method: string; params: unknown[] }[]): Promise<unknown[]> => {
    const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch.map((b, id) => ({ jsonrpc: '2.0', id, ...b }))) })
    const out = (await res.json()) as { id: number; result?: unknown; error?: { message: string } }[]
    const failed = out.find((r) => r.error)
    if (failed) throw new Error(`anvil refused ${batch[failed.id]?.method}: ${failed.error!.message}`)
    return out.sort((a, b) => a.id - b.id).map((r) => r.result)
  }
  // Explicit nonces: anvil would give every transaction of one batch the same one.
  let nonce = Number((await rpc([{ method: 'eth_getTransactionCount', params: [from, 'pending'] }]))[0])
  const tx = (data: string, gas: number) => ({ method: 'eth_sendTransaction', params: [{ from, to: contract, data, gas: `0x${gas.toString(16)}`, nonce: `0x${(nonce++).toString(16)}` }] })
  const names = Array.from({ length: o.topics }, (_, i) => `bench-sync/${i}/#`)
  const calls = [
    ...names.map((n) => tx(IFACE.encodeFunctionData('addTopic', [n, 0n, 0n, 0, 0, '0x', 'bench sync']), 400_000)),
    // Members are random addresses (no key is needed to be granted; making 100,000 keys would take minutes).
    ...Array.from({ length: o.grants }, (_, i) => tx(IFACE.encodeFunctionData('allow', [names[i % o.topics]!, hexlify(randomBytes(20)), 3, 0, 'bench sync']), 200_000)),
  ]
  const t0 = Date.now()
  await rpc([{ method: 'evm_setAutomine', params: [false] }])
  let blocks = 0
  for (let i = 0; i < calls.length; i += perBlock) {
    await rpc(calls.slice(i, i + perBlock))
    await rpc([{ method: 'evm_mine', params: [] }])
    blocks++
    if (blocks % 20 === 0) step(`writing the history: ${Math.min(i + perBlock, calls.length)}/${calls.length} transactions`)
  }
  await rpc([{ method: 'evm_setAutomine', params: [true] }])
  return { blocks, deploySeconds: (Date.now() - t0) / 1000 }
}

/** A real `flytrap proxy start` until it logs 'policy loaded'; its figures, and its RSS a moment later. */
async function coldStart(o: { rpc: string; contract: string; fromBlock: number; broker: string }): Promise<{ ms: number; wallMs: number; rssKiB: number; topics: number; grants: number }> {
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const args = ['proxy', 'start', '--json', '--listen', '127.0.0.1:0', '--broker', o.broker, '--rpc', o.rpc, '--contract', o.contract, '--from-block', String(o.fromBlock), '--no-journal', '--log-level', 'info', '--poll-interval', '10s']
  const t0 = Date.now()
  // FLYTRAP_PROXY_NODE_OPTIONS lets a profiler (--cpu-prof) be attached to the proxy, as in the other benches.
  const nodeArgs = (process.env.FLYTRAP_PROXY_NODE_OPTIONS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...nodeArgs, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    const loaded = await new Promise<{ ms: number; topics: number; grants: number }>((resolve, reject) => {
      let buf = ''
      const timer = setTimeout(() => reject(new Error(`the proxy did not load the policy within 120 s: ${buf.slice(-500)}`)), 120_000)
      child.stderr.on('data', (c: Buffer) => {
        buf += c.toString()
        for (const line of buf.split('\n')) {
          if (!line.includes('"policy loaded"')) continue
          clearTimeout(timer)
          const j = JSON.parse(line) as { ms: number; topics: number; grants: number }
          resolve({ ms: j.ms, topics: j.topics, grants: j.grants })
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`the proxy exited with ${code}: ${buf.slice(-500)}`))
      })
    })
    const wallMs = Date.now() - t0
    await new Promise((r) => setTimeout(r, 1_000)) // what the sync allocated and dropped is collected by now
    return { ...loaded, wallMs, rssKiB: rssKiB(child.pid!) }
  } finally {
    child.removeAllListeners('exit')
    await stopChild(child, 5_000)
  }
}
