/**
 * The self-contained benchmark stack: anvil + contract + mosquitto (plain and TLS) + the FlyTrap proxy
 * (plain and TLS listeners) + HAProxy in TCP mode (plain and TLS) in front of the same mosquitto; with
 * `journalModes`, two more proxies on TCP for the cost of the journal: `--journal-sync relaxed` and
 * `--no-journal`, and a strict one with `--journal-deliveries all` (the main one runs the defaults).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { ANVIL_DEV_KEYS, startAnvil, type AnvilHandle } from '../dev/anvil.js'
import { makeTestCA } from '../dev/certs.js'
import { startMosquitto, type MosquittoHandle } from '../dev/mosquitto.js'
import { connect, deployFlyTrap, FlyTrapClient } from '../chain/client.js'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stopChild } from '../dev/anvil.js'
import { haproxyAvailable, startHaproxy, type RelayHandle } from './haproxy.js'
import { startNodeRelay } from './node-relay.js'
import type { Target } from './raw-client.js'

export const BENCH_TOPIC = 'bench/t'

export interface BenchTargets {
  direct: Target
  flytrap: Target
  relay?: Target
  /** A bare Node.js `pipe()` relay in front of the same mosquitto (TCP): what a Node hop costs by itself. */
  nodeRelay: Target
  directTls: Target
  flytrapTls: Target
  relayTls?: Target
  /** The same proxy with --journal-sync relaxed, and with --no-journal (TCP only). */
  flytrapRelaxed?: Target
  flytrapNoJournal?: Target
  /** Strict with --journal-deliveries all (TCP only). */
  flytrapAllDeliveries?: Target
}

export interface BenchStack {
  targets: BenchTargets
  chainId: number
  contract: string
  /** Key allowed to publish and subscribe on BENCH_TOPIC. */
  key: string
  client: FlyTrapClient
  proxy: SpawnedProxy
  mosquitto: MosquittoHandle
  relay?: RelayHandle
  relaySkipped?: string
  /** Process ids, for memory readings from /proc. */
  pids: { proxy: number; broker: number }
  stop(): Promise<void>
}

export interface SpawnedProxy {
  pid: number
  listening: { host: string; port: number; tls: boolean }[]
  stop(): Promise<void>
}

/** `flytrap proxy start --json` as a child process, so the proxy never shares an event loop with the load. */
export async function spawnProxy(args: string[], opts: { onStderr?: (text: string) => void; heapProbeDir?: string } = {}): Promise<SpawnedProxy> {
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  // FLYTRAP_PROXY_NODE_OPTIONS lets a profiler (--cpu-prof) be attached to the proxy process.
  const nodeArgs = (process.env.FLYTRAP_PROXY_NODE_OPTIONS ?? '').split(' ').filter(Boolean)
  const probe = opts.heapProbeDir ? ['--expose-gc', '--import', new URL(`./heap-probe${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url).href] : []
  const env = opts.heapProbeDir ? { ...process.env, FLYTRAP_HEAP_PROBE_DIR: opts.heapProbeDir } : process.env
  const child = spawn(process.execPath, [...nodeArgs, ...probe, bin, 'proxy', 'start', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let err = ''
  child.stderr.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-2_000)
    opts.onStderr?.(c.toString())
  })
  const ready = await new Promise<{ listening: SpawnedProxy['listening'] }>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 30_000)
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      try {
        resolve(JSON.parse(out.slice(0, nl)))
      } catch {
        reject(new Error(`proxy printed ${out.slice(0, 200)}`))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`proxy exited with ${code}: ${err}`))
    })
  })
  child.removeAllListeners('exit')
  return { pid: child.pid!, listening: ready.listening, stop: () => stopChild(child, 5_000) }
}

export async function startBenchStack(opts: { proxyArgs?: string[]; journalModes?: boolean; onStep?: (s: string) => void; /** The main proxy reports its heap after GC on SIGUSR2 (heap-probe.ts) into this directory. */ heapProbeDir?: string } = {}): Promise<BenchStack> {
  const step = opts.onStep ?? (() => {})
  const cleanup: (() => Promise<void>)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'flytrap-bench-'))
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
  try {
    step('starting anvil and deploying the contract')
    const anvil: AnvilHandle = await startAnvil()
    cleanup.push(() => anvil.stop())
    const { provider, chainId } = await connect(anvil.rpcUrl, { pollingIntervalMs: 200 })
    cleanup.push(async () => provider.destroy())
    const owner = new Wallet(ANVIL_DEV_KEYS[0], provider)
    const d = await deployFlyTrap(owner)
    const client = new FlyTrapClient(d.address, owner)
    const key = ANVIL_DEV_KEYS[1]
    await client.addTopic({ name: 'bench/#', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'benchmark' })
    await client.allow('bench/#', new Wallet(key).address, 3, 0, 'benchmark client')

    step('starting mosquitto (plain and TLS)')
    const ca = await makeTestCA(join(dir, 'ca'))
    const mosquitto = await startMosquitto({ tls: { cert: ca.serverCert, key: ca.serverKey }, configExtra: ['max_queued_messages 100000', 'max_inflight_messages 0', 'set_tcp_nodelay true'] })
    cleanup.push(() => mosquitto.stop())

    step('starting the FlyTrap proxy (its own process)')
    const common = [
      '--broker', mosquitto.url,
      '--rpc', anvil.rpcUrl, '--contract', d.address, '--from-block', String(d.block),
      '--ban-threshold', '1000000', '--max-connections-per-ip', '10000000', '--max-connections', '10000000',
      '--log-level', 'error',
    ]
    const proxy = await spawnProxy([
      '--listen', '127.0.0.1:0',
      '--tls-listen', '127.0.0.1:0', '--tls-cert', ca.serverCert, '--tls-key', ca.serverKey,
      ...common,
      '--data-dir', join(dir, 'proxy'), // a fresh journal and outbox for every run
      ...(opts.proxyArgs ?? []),
    ], { heapProbeDir: opts.heapProbeDir })
    cleanup.push(() => proxy.stop())
    const modes: { relaxed?: SpawnedProxy; off?: SpawnedProxy; all?: SpawnedProxy } = {}
    if (opts.journalModes) {
      step('starting FlyTrap with --journal-sync relaxed, with --no-journal and with --journal-deliveries all')
      modes.relaxed = await spawnProxy(['--listen', '127.0.0.1:0', ...common, '--data-dir', join(dir, 'proxy-relaxed'), '--journal-sync', 'relaxed', ...(opts.proxyArgs ?? [])])
      cleanup.push(() => modes.relaxed!.stop())
      modes.off = await spawnProxy(['--listen', '127.0.0.1:0', ...common, '--data-dir', join(dir, 'proxy-off'), '--no-journal', ...(opts.proxyArgs ?? [])])
      cleanup.push(() => modes.off!.stop())
      modes.all = await spawnProxy(['--listen', '127.0.0.1:0', ...common, '--data-dir', join(dir, 'proxy-all'), '--journal-deliveries', 'all', ...(opts.proxyArgs ?? [])])
      cleanup.push(() => modes.all!.stop())
    }
    const tcpOf = (p: SpawnedProxy | undefined): Target | undefined => (p ? { host: '127.0.0.1', port: p.listening.find((l) => !l.tls)!.port } : undefined)

    let relay: RelayHandle | undefined
    let relaySkipped: string | undefined
    if (haproxyAvailable()) {
      step('starting HAProxy (TCP mode) as the plain relay')
      relay = await startHaproxy({ host: '127.0.0.1', port: mosquitto.port }, { cert: ca.serverCert, key: ca.serverKey })
      cleanup.push(() => relay!.stop())
    } else relaySkipped = 'haproxy not found on PATH (apt-get install haproxy): the relay reference is skipped'

    step('starting a bare Node.js relay (client.pipe(upstream))')
    const nodeRelay = await startNodeRelay({ host: '127.0.0.1', port: mosquitto.port })
    cleanup.push(() => nodeRelay.stop())

    const tlsClient = { ca: ca.pem.ca }
    const plain = proxy.listening.find((l) => !l.tls)!
    const secure = proxy.listening.find((l) => l.tls)!
    return {
      targets: {
        direct: { host: '127.0.0.1', port: mosquitto.port },
        flytrap: { host: '127.0.0.1', port: plain!.port },
        relay: relay ? { host: '127.0.0.1', port: relay.port } : undefined,
        nodeRelay: { host: '127.0.0.1', port: nodeRelay.port },
        directTls: { host: '127.0.0.1', port: mosquitto.tlsPort!, tls: tlsClient },
        flytrapTls: { host: '127.0.0.1', port: secure!.port, tls: tlsClient },
        relayTls: relay ? { host: '127.0.0.1', port: relay.tlsPort!, tls: tlsClient } : undefined,
        flytrapRelaxed: tcpOf(modes.relaxed),
        flytrapNoJournal: tcpOf(modes.off),
        flytrapAllDeliveries: tcpOf(modes.all),
      },
      chainId,
      contract: d.address,
      key,
      client,
      proxy,
      mosquitto,
      relay,
      relaySkipped,
      pids: { proxy: proxy.pid, broker: mosquitto.process.pid ?? 0 },
      stop: async () => {
        for (const c of cleanup.reverse()) await c().catch(() => {})
      },
    }
  } catch (err) {
    for (const c of cleanup.reverse()) await c().catch(() => {})
    throw err
  }
}
