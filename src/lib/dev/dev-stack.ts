/**
 * The whole FlyTrap stack on one machine, for `flytrap dev`: the bundled anvil (state kept in a file so a
 * restart keeps topics and grants), the contract (deployed when the recorded one is missing), a dedicated dev
 * account as the proxy's registered reporter, a demo topic, a broker (mosquitto when installed, else the
 * embedded aedes, or one you name), and the proxy in front of it — as the product runs: with its journal,
 * anchoring every short period, and bans lenient enough for a typo. Everything started here is stopped by
 * stop(), also when start-up fails half way.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { openAccountability, type Accountability } from '../audit/accountability.js'
import { connect, deployFlyTrap, FlyTrapClient, type Deployment } from '../chain/client.js'
import { deploymentFor, flytrapDir, recordDeployment } from '../config/project-dir.js'
import { FlytrapError } from '../errors.js'
import { countryOf } from '../geo/lookup.js'
import { silentLogger, type Logger } from '../log.js'
import { DEFAULTS, type BanOptions, type ProxyOptions, type UpstreamOptions } from '../proxy/options.js'
import { checkBrokers } from '../proxy/upstreams.js'
import { randomBytes } from 'node:crypto'
import { startProxy, type ProxyHandle } from '../proxy/server.js'
import { ANVIL_DEV_KEYS, startAnvil, type AnvilHandle } from './anvil.js'
import { EMBEDDED_BROKER_LACKS, startEmbeddedBroker, type EmbeddedBrokerHandle } from './embedded-broker.js'
import { findMosquitto, startMosquitto, type MosquittoHandle, type MosquittoLookup } from './mosquitto.js'
import { portIsFree } from './ports.js'

export const DEMO_TOPIC = 'demo/hello'

/** The dev account the proxy reports, anchors and bans with: the outbox owns its nonces, so nothing else may use it. */
export const DEV_REPORTER_INDEX = 9

/** Anchors show up in `audit verify` and the UI within a minute or two. */
export const DEV_PERIOD_MS = 60_000

/** A mistyped credential must not lock the developer out: many failures before a ban, and a short one. */
export const DEV_BANS: Pick<BanOptions, 'threshold' | 'windowMs' | 'durationMs'> = { threshold: 20, windowMs: 60_000, durationMs: 10_000 }

/** Which broker runs behind the dev proxy: 'mosquitto' (started here), 'embedded' (aedes, in this process), or a URL. */
export type DevBrokerChoice = 'auto' | 'mosquitto' | 'embedded' | string

export interface DevStackOptions {
  /** Where deployments.json and dev/anvil-state.json live [default: .flytrap in the working directory]. */
  dir?: string
  /** Keep the chain in dir/dev/anvil-state.json across restarts [default: true]. */
  persist?: boolean
  /** Forget the saved chain first (a brand-new chain, contract and demo topic). */
  fresh?: boolean
  /** Deploy the contract with publicSensitiveLists (addresses in clear in sensitive reports); only when a contract is deployed. */
  publicSensitiveLists?: boolean
  /** anvil's port [default: 8545; 0 = any free port]. */
  anvilPort?: number
  /**
   * 'auto' (default): mosquitto when it is installed, else the embedded broker; 'mosquitto' or 'embedded' to
   * force one; or the mqtt:// URL of a broker that is already running.
   */
  broker?: DevBrokerChoice
  /** Where to look for mosquitto [default: the PATH, then /usr/sbin, /usr/local/sbin, /opt/homebrew/sbin]. */
  mosquittoLookup?: MosquittoLookup
  /** Keep the proxy's journal and anchor it [default: true], in dir/dev/proxy. */
  journal?: boolean
  /** The anchoring/reporting period [default: DEV_PERIOD_MS]. */
  periodMs?: number
  /** The proxy's listener [default: 127.0.0.1:1883; port 0 = any free port]. */
  proxyHost?: string
  proxyPort?: number
  /** Proxy settings on top of the defaults (e.g. limits for the bench). */
  proxy?: Partial<Omit<ProxyOptions, 'contract' | 'reporter' | 'chainId' | 'upstream'>>
  /** Register the demo topic and let dev account #1 join it on first run [default: true]. */
  demo?: boolean
  /** Wait this long for the proxy's first policy sync before resolving [default: 15,000 ms]. */
  syncTimeoutMs?: number
  /** Proxy logs [default: silent]. */
  logger?: Logger
  /** Progress messages ("deploying the contract"), for a spinner or a log. */
  onStep?: (message: string) => void
}

export interface DevKey {
  index: number
  address: string
  /** One of anvil's public, well-known test keys: never use it for anything of value. */
  privateKey: string
}

export interface DevStack {
  rpcUrl: string
  chainId: number
  contract: string
  /** The block the contract was deployed in (the proxy syncs from here). */
  deployBlock: number
  /** The broker the proxy forwards to. */
  brokerUrl: string
  /** What that broker is: mosquitto started here, the embedded aedes, or the one named by URL. */
  brokerKind: 'mosquitto' | 'embedded' | 'external'
  /** e.g. "mosquitto 2.0.11 (/usr/sbin/mosquitto)", "aedes 2.0.0-beta.1 (embedded)", or the URL. */
  brokerName: string
  /** What the broker lacks that FlyTrap's users may expect (empty for mosquitto and external brokers). */
  brokerLacks: string[]
  /** mqtt://host:port of the proxy, the address devices use. */
  proxyUrl: string
  proxy: ProxyHandle
  devKeys: DevKey[]
  /** The proxy's reporter account (dev #9, used by nothing else). */
  reporter: string
  /** Where the proxy keeps its journal, outbox and reporting state (null without a journal). */
  dataDir: string | null
  periodMs: number
  bans: typeof DEV_BANS
  /** What happened on this start. */
  deployed: boolean
  demoCreated: boolean
  /** The proxy's first policy sync finished before start resolved. */
  synced: boolean
  stateFile?: string
  anvil: AnvilHandle
  mosquitto?: MosquittoHandle
  embedded?: EmbeddedBrokerHandle
  accountability?: Accountability
  /** Stops the proxy, mosquitto and anvil (which saves its state). Safe to call twice. */
  stop(): Promise<void>
}

export const DEV_KEYS: DevKey[] = ANVIL_DEV_KEYS.map((privateKey, index) => ({ index, address: new Wallet(privateKey).address, privateKey }))

export async function startDevStack(opts: DevStackOptions = {}): Promise<DevStack> {
  const step = opts.onStep ?? (() => {})
  const dir = opts.dir ?? flytrapDir()
  const proxyHost = opts.proxyHost ?? '127.0.0.1'
  const proxyPort = opts.proxyPort ?? 1883
  const anvilPort = opts.anvilPort ?? 8545

  // Refuse busy ports before starting anything, with the flag that fixes it.
  if (proxyPort !== 0 && !(await portIsFree(proxyPort, proxyHost))) throw portBusy('proxy', proxyHost, proxyPort, '--port')
  if (anvilPort !== 0 && !(await portIsFree(anvilPort, '127.0.0.1'))) throw portBusy('anvil', '127.0.0.1', anvilPort, '--anvil-port')

  const chosen = chooseDevBroker(opts.broker ?? 'auto', opts.mosquittoLookup)
  const stateFile = opts.persist === false ? undefined : join(dir, 'dev', 'anvil-state.json')
  const periodMs = opts.periodMs ?? DEV_PERIOD_MS
  const dataDir = opts.journal === false ? null : join(dir, 'dev', 'proxy')
  if (stateFile) {
    if (opts.fresh) rmSync(stateFile, { force: true })
    mkdirSync(join(dir, 'dev'), { recursive: true })
  }
  // A journal anchors to one contract: a new chain starts a new journal.
  if (dataDir && opts.fresh) rmSync(dataDir, { recursive: true, force: true })

  const cleanup: (() => Promise<void>)[] = []
  const stopAll = async () => {
    const errors: unknown[] = []
    for (const fn of cleanup.splice(0).reverse()) {
      try {
        await fn()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length) throw new AggregateError(errors, 'some dev services did not stop cleanly')
  }

  try {
    step(stateFile ? `starting anvil (state in ${stateFile})` : 'starting anvil')
    const anvil = await startAnvil({ port: anvilPort, stateFile })
    cleanup.push(() => anvil.stop()) // SIGTERM: anvil writes its state file on the way out

    const { provider, chainId } = await connect(anvil.rpcUrl)
    cleanup.push(async () => provider.destroy())
    const admin = new Wallet(DEV_KEYS[0]!.privateKey, provider)

    // The contract: the recorded one if the chain still has its code, else a new deployment.
    let deployment: Deployment | undefined = deploymentFor(chainId, dir)
    let deployed = false
    if (!deployment || (await provider.getCode(deployment.address)) === '0x') {
      step('deploying the FlyTrap contract')
      // The old journal was anchored to a contract that is gone (the chain was reset): it cannot verify any more.
      if (dataDir && existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true })
      const d = await deployFlyTrap(admin, { publicSensitiveLists: opts.publicSensitiveLists === true })
      deployment = { chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, deployedAt: d.deployedAt }
      recordDeployment(deployment, dir)
      deployed = true
    }
    const asAdmin = new FlyTrapClient(deployment.address, admin)

    const reporterWallet = new Wallet(DEV_KEYS[DEV_REPORTER_INDEX]!.privateKey, provider)
    if (!(await asAdmin.isReporter(reporterWallet.address))) {
      step(`registering ${reporterWallet.address} (dev account #${DEV_REPORTER_INDEX}) as the proxy's reporter`)
      await asAdmin.addReporter(reporterWallet.address, 'flytrap dev proxy')
    }
    const asReporter = new FlyTrapClient(deployment.address, reporterWallet)

    let demoCreated = false
    if (opts.demo !== false && !(await asAdmin.topic(DEMO_TOPIC))) {
      step(`registering the demo topic ${DEMO_TOPIC}`)
      const { registrationFee } = await asAdmin.info()
      await asAdmin.addTopic({ name: DEMO_TOPIC, pubFee: 0n, subFee: 0n, sensitive: false, open: true, period: 0, countries: '0x', reason: 'flytrap dev demo', value: registrationFee })
      // Dev account #1 joins (free), so the printed mosquitto_sub/mosquitto_pub lines work straight away.
      const device = new FlyTrapClient(deployment.address, new Wallet(DEV_KEYS[1]!.privateKey, provider))
      await device.join(DEMO_TOPIC, 3, 1, 0n)
      demoCreated = true
    }

    let mosquitto: MosquittoHandle | undefined
    let embedded: EmbeddedBrokerHandle | undefined
    let brokerUrl: string
    let brokerKind: DevStack['brokerKind']
    let brokerName: string
    let brokerLacks: string[] = []
    let upstream: UpstreamOptions
    // The brokers started here admit only the proxy (a fresh password each start), so the dev stack has no bypass.
    const locked = { username: 'flytrap-proxy', password: randomBytes(18).toString('base64url') }
    if (chosen.kind === 'mosquitto') {
      step('starting mosquitto (locked: it admits only the proxy)')
      const m = await startMosquitto({ port: 0, binary: chosen.binary, locked })
      mosquitto = m
      cleanup.push(() => m.stop())
      brokerUrl = m.url
      brokerKind = 'mosquitto'
      brokerName = `mosquitto (${chosen.binary})`
      upstream = { url: m.url, ...locked }
    } else if (chosen.kind === 'embedded') {
      step('starting the embedded broker (aedes; locked: it admits only the proxy)')
      const e = await startEmbeddedBroker({ port: 0, locked })
      embedded = e
      cleanup.push(() => e.stop())
      brokerUrl = e.url
      brokerKind = 'embedded'
      brokerName = `${e.name} (embedded, in this process)`
      brokerLacks = [...EMBEDDED_BROKER_LACKS]
      upstream = { url: e.url, ...locked }
    } else {
      brokerUrl = chosen.url
      brokerKind = 'external'
      brokerName = chosen.url
      upstream = { url: chosen.url }
    }
    step(`checking the broker ${brokerUrl}`)
    await checkBrokers([upstream])

    // The proxy as `proxy start` runs it: every decision journaled before it is acknowledged, every chain
    // write (anchors, reports, bans) through the one outbox of the reporter key.
    let accountability: Accountability | undefined
    if (dataDir) {
      step(`opening the journal in ${dataDir}`)
      const a = await openAccountability({ dataDir, periodMs, reporter: asReporter, countryOf, logger: opts.logger ?? silentLogger })
      accountability = a
      cleanup.push(() => a.stop())
    }

    step(`starting the proxy on ${proxyHost}:${proxyPort}`)
    const listen = `${proxyHost.includes(':') ? `[${proxyHost}]` : proxyHost}:${proxyPort}`
    let proxy: ProxyHandle
    try {
      proxy = await startProxy({
        ...DEFAULTS,
        bans: { ...DEFAULTS.bans, ...DEV_BANS },
        limits: { ...DEFAULTS.limits },
        pollIntervalMs: 500,
        // anvil serves WebSocket on its HTTP port: policy changes arrive by eth_subscribe (polling stays the fallback).
        rpcWs: anvil.rpcUrl.replace(/^http/, 'ws'),
        logger: opts.logger ?? silentLogger,
        ...opts.proxy,
        listeners: opts.proxy?.listeners ?? [{ listen }],
        upstream,
        contract: new FlyTrapClient(deployment.address, provider),
        reporter: accountability?.outbox ?? asReporter,
        durable: accountability?.durable,
        decisionDeliveries: accountability ? 'sensitive' : undefined,
        chainId,
        fromBlock: deployment.block,
      })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portBusy('proxy', proxyHost, proxyPort, '--port')
      throw err
    }
    const running = proxy
    cleanup.push(() => running.close({ graceMs: 2_000 }))
    await accountability?.attach(proxy)

    step('waiting for the first policy sync')
    const synced = await waitForSync(proxy, opts.syncTimeoutMs ?? 15_000)
    // The log subscription to its anvil goes live within a moment; until then (or if it cannot) the poll serves.
    for (let i = 0; i < 40 && proxy.policyStatus().mode !== 'subscription'; i++) await new Promise((r) => setTimeout(r, 50))

    const a = proxy.address
    let stopping: Promise<void> | undefined
    return {
      rpcUrl: anvil.rpcUrl,
      chainId,
      contract: deployment.address,
      deployBlock: deployment.block,
      brokerUrl,
      brokerKind,
      brokerName,
      brokerLacks,
      proxyUrl: `mqtt://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`,
      proxy,
      devKeys: DEV_KEYS,
      reporter: reporterWallet.address,
      dataDir,
      periodMs,
      bans: DEV_BANS,
      deployed,
      demoCreated,
      synced,
      stateFile,
      anvil,
      mosquitto,
      embedded,
      accountability,
      stop: () => (stopping ??= stopAll()),
    }
  } catch (err) {
    await stopAll().catch(() => {})
    throw err
  }
}

/** --broker: mosquitto whenever it is installed (auto) or asked for, the embedded broker otherwise or when asked for, or a URL. */
export function chooseDevBroker(choice: DevBrokerChoice, lookup: MosquittoLookup = {}): { kind: 'mosquitto'; binary: string } | { kind: 'embedded' } | { kind: 'external'; url: string } {
  if (choice === 'embedded') return { kind: 'embedded' }
  if (choice === 'auto' || choice === 'mosquitto') {
    const binary = findMosquitto(lookup)
    if (binary) return { kind: 'mosquitto', binary }
    if (choice === 'auto') return { kind: 'embedded' }
    throw new FlytrapError('mosquitto is not installed (not on the PATH, nor in /usr/sbin or /usr/local/sbin)', {
      exit: 'config',
      code: 'FLYTRAP_NO_BROKER',
      suggestions: ['install it (`apt-get install mosquitto`), or use the embedded broker: --broker embedded'],
    })
  }
  if (/^mqtts?:\/\/[^/]+/.test(choice)) return { kind: 'external', url: choice }
  throw new FlytrapError(`--broker ${choice}: expected auto, embedded, mosquitto or an mqtt://host:port URL`, { exit: 'usage' })
}

function waitForSync(proxy: ProxyHandle, timeoutMs: number): Promise<boolean> {
  if (proxy.policyStatus().synced) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(proxy.policyStatus().synced), timeoutMs)
    proxy.on('policy-synced', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

function portBusy(what: string, host: string, port: number, flag: string): FlytrapError {
  return new FlytrapError(`port ${port} on ${host} is already in use, so the ${what} cannot listen there`, {
    exit: 'config',
    code: 'FLYTRAP_PORT_BUSY',
    suggestions: [`choose another port with ${flag} <port>${flag === '--port' ? ' (devices then connect to that port)' : ''}, or stop what is using ${port}`],
  })
}
