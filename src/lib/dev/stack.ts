/**
 * The whole FlyTrap stack on one machine, for `flytrap dev`, the bench and the e2e tests: the bundled anvil
 * (state kept in a file so a restart keeps topics and grants), the contract (deployed when the recorded one is
 * missing), dev account #0 as reporter, a demo topic, mosquitto on a free port (or a broker you name), and the
 * proxy in front of it. Everything started here is stopped by stop(), also when start-up fails half way.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { connect, deployFlyTrap, FlyTrapClient, type Deployment } from '../chain/client.js'
import { deploymentFor, flytrapDir, recordDeployment } from '../config/store.js'
import { FlytrapError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { DEFAULTS, type ProxyOptions, type UpstreamOptions } from '../proxy/options.js'
import { checkBrokers } from '../proxy/upstreams.js'
import { randomBytes } from 'node:crypto'
import { startProxy, type ProxyHandle } from '../proxy/server.js'
import { ANVIL_DEV_KEYS, startAnvil, type AnvilHandle } from './anvil.js'
import { startMosquitto, type MosquittoHandle } from './mosquitto.js'
import { portIsFree } from './ports.js'

export const DEMO_TOPIC = 'demo/hello'

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
  /** Use this broker instead of starting mosquitto. */
  brokerUrl?: string
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
  /** mqtt://host:port of the proxy, the address devices use. */
  proxyUrl: string
  proxy: ProxyHandle
  devKeys: DevKey[]
  /** Reporter account (dev #0; also the contract admin and demo topic owner). */
  reporter: string
  /** What happened on this start. */
  deployed: boolean
  demoCreated: boolean
  /** The proxy's first policy sync finished before start resolved. */
  synced: boolean
  stateFile?: string
  anvil: AnvilHandle
  mosquitto?: MosquittoHandle
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

  const stateFile = opts.persist === false ? undefined : join(dir, 'dev', 'anvil-state.json')
  if (stateFile) {
    if (opts.fresh) rmSync(stateFile, { force: true })
    mkdirSync(join(dir, 'dev'), { recursive: true })
  }

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
      const d = await deployFlyTrap(admin, { publicSensitiveLists: opts.publicSensitiveLists === true })
      deployment = { chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, deployedAt: d.deployedAt }
      recordDeployment(deployment, dir)
      deployed = true
    }
    const asAdmin = new FlyTrapClient(deployment.address, admin)

    if (!(await asAdmin.isReporter(admin.address))) {
      step(`registering ${admin.address} (dev account #0) as reporter`)
      await asAdmin.addReporter(admin.address, 'flytrap dev')
    }

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
    let brokerUrl = opts.brokerUrl
    // Our mosquitto admits only the proxy (a fresh password each start), so the dev stack has no bypass.
    let upstream: UpstreamOptions = { url: brokerUrl ?? '' }
    if (!brokerUrl) {
      step('starting mosquitto (locked: it admits only the proxy)')
      const locked = { username: 'flytrap-proxy', password: randomBytes(18).toString('base64url') }
      const m = await startMosquitto({ port: 0, locked })
      mosquitto = m
      cleanup.push(() => m.stop())
      brokerUrl = m.url
      upstream = { url: m.url, ...locked }
    }
    step(`checking the broker ${brokerUrl}`)
    await checkBrokers([upstream])

    step(`starting the proxy on ${proxyHost}:${proxyPort}`)
    const listen = `${proxyHost.includes(':') ? `[${proxyHost}]` : proxyHost}:${proxyPort}`
    let proxy: ProxyHandle
    try {
      proxy = await startProxy({
        ...DEFAULTS,
        bans: { ...DEFAULTS.bans },
        limits: { ...DEFAULTS.limits },
        pollIntervalMs: 500,
        logger: opts.logger ?? silentLogger,
        ...opts.proxy,
        listeners: opts.proxy?.listeners ?? [{ listen }],
        upstream,
        contract: new FlyTrapClient(deployment.address, provider),
        reporter: asAdmin,
        chainId,
        fromBlock: deployment.block,
      })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portBusy('proxy', proxyHost, proxyPort, '--port')
      throw err
    }
    const running = proxy
    cleanup.push(() => running.close({ graceMs: 2_000 }))

    step('waiting for the first policy sync')
    const synced = await waitForSync(proxy, opts.syncTimeoutMs ?? 15_000)

    const a = proxy.address
    let stopping: Promise<void> | undefined
    return {
      rpcUrl: anvil.rpcUrl,
      chainId,
      contract: deployment.address,
      deployBlock: deployment.block,
      brokerUrl,
      proxyUrl: `mqtt://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`,
      proxy,
      devKeys: DEV_KEYS,
      reporter: admin.address,
      deployed,
      demoCreated,
      synced,
      stateFile,
      anvil,
      mosquitto,
      stop: () => (stopping ??= stopAll()),
    }
  } catch (err) {
    await stopAll().catch(() => {})
    throw err
  }
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
