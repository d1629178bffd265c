import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { FlyTrapClient } from '../../lib/chain/client.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { loadWallet } from '../../lib/chain/keys.js'
import { deploymentFor, flytrapDir, readFileConfig } from '../../lib/config/project-dir.js'
import { FlytrapError } from '../../lib/errors.js'
import { parseProxyCli, DEFAULT_LISTEN } from '../../lib/proxy/cli-options.js'
import { parseDuration } from '../../lib/parse/units.js'
import { jsonLogger } from '../../lib/log.js'
import { DEFAULTS } from '../../lib/proxy/options.js'
import { attachWorker, ipcSink, isWorkerProcess, startPrimary, workerIndex } from '../../lib/proxy/cluster.js'
import { openAccountability } from '../../lib/audit/accountability.js'
import { countryOf, useGeoDb } from '../../lib/geo/lookup.js'
import { join, resolve } from 'node:path'
import { startProxy, type ProxyHandle } from '../../lib/proxy/server.js'
import { brokerList, checkBrokers } from '../../lib/proxy/upstreams.js'

export interface ProxyStartResult {
  listening: { url: string; host: string; port: number; tls: boolean }[]
  /** http://host:port/metrics, or null without --metrics. */
  metrics: string | null
  contract: string
  chainId: number
  /** The first broker (new sessions go there while it is healthy). */
  broker: string
  /** Every --broker, in order. */
  brokers: string[]
  /** The address bans are recorded from on chain; null when bans stay local. */
  reporter: string | null
  /** Journal, outbox and reporting state (null with --no-journal). */
  dataDir: string | null
  /** With --workers N > 1: the number of processes and each one's metrics URL. */
  workers?: number
  metricsAll?: string[]
}

const LIMITS = 'LIMITS'
const BANS = 'BANS'
const TLS = 'TLS'
const POLICY = 'POLICY'
const AUDIT = 'AUDIT'
const BROKER = 'BROKER'

export default class ProxyStart extends ChainCommand<typeof ProxyStart> {
  static override description = `Run the FlyTrap proxy in front of an MQTT broker: devices authenticate with Ethereum-signed credentials, and every
CONNECT, PUBLISH and SUBSCRIBE is checked against the policy on the contract. Runs until SIGINT/SIGTERM, then
closes gracefully. Logs are JSON lines on stderr; with --json, stdout carries one JSON line once listening.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --listen 0.0.0.0:1883 --broker mqtt://127.0.0.1:1884',
    '<%= config.bin %> <%= command.id %> --broker mqtt://127.0.0.1:1884 --tls-listen 0.0.0.0:8883 --tls-cert server.crt --tls-key server.key --metrics 127.0.0.1:9464',
    '<%= config.bin %> <%= command.id %> --broker mqtts://broker.internal:8883 --broker-ca ca.crt --proxy-protocol --trusted-proxy 10.0.0.0/8',
    'FLYTRAP_REPORTER_KEY=reporter.json FLYTRAP_KEY_PASSWORD=… <%= config.bin %> <%= command.id %> --broker mqtt://mosquitto:1883 --ban-key "$BAN_SECRET" --json',
  ]

  static override flags = {
    listen: Flags.string({ description: `plain MQTT listener host:port, repeatable ([::]:1883 for IPv6) [default: ${DEFAULT_LISTEN}]`, multiple: true, env: 'FLYTRAP_LISTEN' }),
    broker: Flags.string({ description: 'the upstream broker: mqtt://host:port or mqtts://host:port; repeatable: new sessions go to the first healthy one', required: true, multiple: true, env: 'FLYTRAP_BROKER' }),
    'broker-username': Flags.string({ description: "the proxy's username on the broker (with --username-from-address: only for the proxy's own start-up check)", env: 'FLYTRAP_BROKER_USERNAME', helpGroup: BROKER }),
    'broker-password': Flags.string({ description: "the proxy's password on the broker (visible in `ps`: prefer --broker-password-file or FLYTRAP_BROKER_PASSWORD)", env: 'FLYTRAP_BROKER_PASSWORD', helpGroup: BROKER }),
    'broker-password-file': Flags.string({ description: "file whose first line is the proxy's password on the broker", env: 'FLYTRAP_BROKER_PASSWORD_FILE', helpGroup: BROKER }),
    'broker-cert': Flags.string({ description: "the proxy's client certificate (PEM) for an mqtts:// broker that authenticates it by certificate", helpGroup: BROKER }),
    'broker-key': Flags.string({ description: 'private key (PEM) of --broker-cert', helpGroup: BROKER }),
    'broker-check': Flags.boolean({ description: "at start, CONNECT to the broker with the proxy's identity and exit (code 4) when it is unreachable or refuses (--no-broker-check starts anyway)", default: true, allowNo: true, helpGroup: BROKER }),
    'broker-ca': Flags.string({ description: 'CA bundle (PEM) to verify an mqtts:// broker', helpGroup: TLS }),
    'broker-insecure': Flags.boolean({ description: 'do not verify the mqtts:// broker certificate (testing only)', helpGroup: TLS }),
    'broker-servername': Flags.string({ description: 'TLS server name of the broker when it differs from the URL host', helpGroup: TLS }),
    'tls-listen': Flags.string({ description: 'TLS listener host:port, e.g. 0.0.0.0:8883', helpGroup: TLS }),
    'tls-cert': Flags.string({ description: 'server certificate chain (PEM) for --tls-listen', helpGroup: TLS }),
    'tls-key': Flags.string({ description: 'server private key (PEM) for --tls-listen', helpGroup: TLS }),
    'tls-client-ca': Flags.string({ description: 'CA bundle (PEM) to verify client certificates', helpGroup: TLS }),
    'tls-require-client-cert': Flags.boolean({ description: 'refuse TLS clients without a certificate from --tls-client-ca', helpGroup: TLS }),
    'proxy-protocol': Flags.boolean({ description: 'expect a PROXY protocol v1/v2 header (from --trusted-proxy peers only; others are refused)' }),
    'trusted-proxy': Flags.string({ description: 'IP or CIDR of a load balancer allowed to send PROXY headers (repeatable)', multiple: true }),
    metrics: Flags.string({ description: 'serve Prometheus metrics on host:port (/metrics), e.g. 127.0.0.1:9464', env: 'FLYTRAP_METRICS' }),
    'poll-interval': Flags.string({ description: `how often to poll the chain for policy changes (500ms, 2s; a bare number is ms) [default: ${DEFAULTS.pollIntervalMs}]`, helpGroup: POLICY }),
    'rpc-ws': Flags.string({ description: 'WebSocket JSON-RPC (ws:// or wss://) of the same chain: policy changes arrive by eth_subscribe within about a block, --poll-interval stays as the fallback [default: --rpc when it is ws://]', env: 'FLYTRAP_RPC_WS', helpGroup: POLICY }),
    'from-block': Flags.integer({ description: 'block to read contract events from [default: the recorded deployment block, else 0]', min: 0, env: 'FLYTRAP_FROM_BLOCK', helpGroup: POLICY }),
    unregistered: Flags.string({ description: 'decision for topics no registered name or filter covers', options: ['deny', 'allow'], default: DEFAULTS.unregisteredTopics, helpGroup: POLICY }),
    'fail-open': Flags.boolean({ description: 'serve before the first policy sync instead of refusing (default: fail closed)', helpGroup: POLICY }),
    'allow-legacy-credentials': Flags.boolean({ description: 'accept the replayable legacy password (a signature over the address alone)', helpGroup: POLICY }),
    'username-from-address': Flags.boolean({ description: 'send the verified address as the username to the broker', helpGroup: POLICY }),
    'max-credential-lifetime': Flags.string({ description: 'longest credential lifetime accepted [default: 366d]', helpGroup: POLICY }),
    'reporter-key': Flags.string({ description: 'key that records bans on chain (hex or keystore; a registered reporter) [default: --key]', env: 'FLYTRAP_REPORTER_KEY', helpGroup: BANS }),
    'ban-threshold': Flags.string({ description: `failures from one address within --ban-window that trigger a ban [default: ${DEFAULTS.bans.threshold}]`, helpGroup: BANS }),
    'ban-window': Flags.string({ description: 'window for counting failures [default: 60s]', helpGroup: BANS }),
    'ban-duration': Flags.string({ description: 'how long a ban lasts [default: 5m]', helpGroup: BANS }),
    'ban-key': Flags.string({ description: 'secret for the keyed hash of banned IPs shared on chain (same on every proxy of this contract; 16+ characters)', env: 'FLYTRAP_BAN_KEY', helpGroup: BANS }),
    'ban-report-interval': Flags.string({ description: 'at most one ban transaction per this interval [default: 60s]', helpGroup: BANS }),
    'max-packet-size': Flags.string({ description: 'largest MQTT packet accepted (1MB, 256KB, bytes; 1 KB = 1024) [default: 1MB]', helpGroup: LIMITS }),
    'connect-timeout': Flags.string({ description: 'time a client has to send CONNECT [default: 10s]', helpGroup: LIMITS }),
    'drain-timeout': Flags.string({ description: 'a peer that does not read its data within this time is disconnected [default: 30s]', helpGroup: LIMITS }),
    'max-connections': Flags.string({ description: `open connections in total [default: ${DEFAULTS.limits.maxConnections}]`, helpGroup: LIMITS }),
    'max-connections-per-ip': Flags.string({ description: `open connections from one IP [default: ${DEFAULTS.limits.maxConnectionsPerIp}]`, helpGroup: LIMITS }),
    'shutdown-grace': Flags.string({ description: 'on SIGINT/SIGTERM, how long sessions get to close; then every socket left is destroyed [default: 5s]', helpGroup: LIMITS }),
    'data-dir': Flags.string({ description: 'where the audit journal, the chain-write outbox and reporting state live [default: .flytrap/proxy]', env: 'FLYTRAP_DATA_DIR', helpGroup: AUDIT }),
    period: Flags.string({ description: 'reporting period: one anchor, one denied summary and one report per sensitive topic per period [default: 30m]', helpGroup: AUDIT }),
    journal: Flags.boolean({ description: 'keep the tamper-evident journal of every decision (--no-journal turns it off)', default: true, allowNo: true, helpGroup: AUDIT }),
    'journal-sync': Flags.string({
      description: 'strict: no CONNACK, SUBACK, PUBACK/PUBREC or sensitive delivery before its decision is fdatasync\'d in the journal; relaxed: acknowledge at once unless the journal is over 50 ms behind (a crash loses at most that window)',
      options: ['strict', 'relaxed'],
      default: 'strict',
      env: 'FLYTRAP_JOURNAL_SYNC',
      helpGroup: AUDIT,
    }),
    'journal-deliveries': Flags.string({
      description: 'which allowed deliveries the journal records: sensitive (only on sensitive topics) or all (every topic, one entry per receiver, topic and second with a count), so "who received data on topic X" has an answer everywhere',
      options: ['sensitive', 'all'],
      default: 'sensitive',
      env: 'FLYTRAP_JOURNAL_DELIVERIES',
      helpGroup: AUDIT,
    }),
    workers: Flags.integer({ description: 'proxy processes sharing the listeners (bans shared between them; worker i serves metrics on the metrics port + i)', default: 1, min: 1, max: 64, helpGroup: LIMITS }),
    'auth-workers': Flags.integer({ description: 'threads per process verifying CONNECT signatures (0 = on the main thread) [default: cores - 1, at most 4]', min: 0, max: 32, helpGroup: LIMITS }),
    'geoip-db': Flags.string({ description: 'MaxMind DB (.mmdb) for client countries: GeoLite2-Country / GeoIP2-Country, or any mmdb with country.iso_code or country_code [default: the bundled GeoLite2 country database]', env: 'FLYTRAP_GEOIP_DB', helpGroup: POLICY }),
    'log-level': Flags.string({ description: 'JSON log lines on stderr at this level and above', options: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'FLYTRAP_LOG_LEVEL' }),
  }

  private printed?: unknown

  async run(): Promise<ProxyStartResult> {
    const f = this.flags
    const { options, logLevel, warnings } = parseProxyCli({
      listen: f.listen,
      tlsListen: f['tls-listen'],
      tlsCert: f['tls-cert'],
      tlsKey: f['tls-key'],
      tlsClientCa: f['tls-client-ca'],
      tlsRequireClientCert: f['tls-require-client-cert'],
      broker: f.broker,
      brokerCa: f['broker-ca'],
      brokerInsecure: f['broker-insecure'],
      brokerServername: f['broker-servername'],
      brokerUsername: f['broker-username'],
      brokerPassword: f['broker-password'],
      brokerPasswordFile: f['broker-password-file'],
      brokerCert: f['broker-cert'],
      brokerKey: f['broker-key'],
      proxyProtocol: f['proxy-protocol'],
      trustedProxy: f['trusted-proxy'],
      metrics: f.metrics,
      pollInterval: f['poll-interval'],
      rpcWs: f['rpc-ws'],
      rpc: this.rpcUrl,
      unregistered: f.unregistered,
      failOpen: f['fail-open'],
      allowLegacyCredentials: f['allow-legacy-credentials'],
      usernameFromAddress: f['username-from-address'],
      maxCredentialLifetime: f['max-credential-lifetime'],
      banThreshold: f['ban-threshold'],
      banWindow: f['ban-window'],
      banDuration: f['ban-duration'],
      banKey: f['ban-key'],
      banReportInterval: f['ban-report-interval'],
      maxPacketSize: f['max-packet-size'],
      connectTimeout: f['connect-timeout'],
      drainTimeout: f['drain-timeout'],
      maxConnections: f['max-connections'],
      maxConnectionsPerIp: f['max-connections-per-ip'],
      logLevel: f['log-level'],
    })
    // Checked before any network call: a bad file is a usage error, not a proxy that refuses every country.
    if (f['geoip-db'] !== undefined) useGeoDb(resolve(f['geoip-db']))
    const graceMs = f['shutdown-grace'] === undefined ? 5_000 : parseDuration(f['shutdown-grace'], '--shutdown-grace', { min: 0, max: 600_000, bare: 'ms' })
    const logger = jsonLogger(logLevel)
    const warn = (text: string) => (this.jsonEnabled() ? logger.warn(text) : this.warn(text))
    for (const w of warnings) warn(w)
    // The broker is checked once, before any worker starts: a proxy that cannot reach it must not say "listening".
    if (f['broker-check'] && !isWorkerProcess()) {
      for (const failed of await checkBrokers(brokerList(options))) warn(`broker ${failed.url} does not accept the proxy: ${failed.message} (new sessions go to the others)`)
    }

    if (f.workers > 1 && !isWorkerProcess()) return this.runPrimary(f.workers, graceMs, logger)
    const index = workerIndex()
    if (isWorkerProcess() && options.metrics) options.metrics = offsetPort(options.metrics, index)

    const periodMs = f.period === undefined ? 30 * 60_000 : parseDuration(f.period, '--period', { min: 1_000, max: 31 * 86_400_000, bare: 'ms' })
    if (periodMs % 1000 !== 0) throw new FlytrapError('--period must be a whole number of seconds', { exit: 'usage' })
    const baseDir = resolve(f['data-dir'] ?? join(flytrapDir(), 'proxy'))
    // Cluster workers keep a journal each (one writer per journal); worker 0 writes to the chain for all.
    const dataDir = isWorkerProcess() ? join(baseDir, `worker-${index}`) : baseDir

    const contract = await this.client()
    const { provider, chainId } = await this.chain()
    const recorded = deploymentFor(chainId)
    const fromBlock = f['from-block'] ?? (recorded && recorded.address.toLowerCase() === contract.address.toLowerCase() ? recorded.block : 0)

    // The reporter: --reporter-key, else the --key / config key. Without one, bans stay on this proxy.
    let reporterClient: FlyTrapClient | undefined
    let reporterAddress: string | null = null
    // In a cluster only worker 0 writes to the chain: one sender owns the reporter's nonces.
    const reporterKey = index === 0 ? (f['reporter-key'] ?? f.key ?? readFileConfig().key) : undefined
    if (reporterKey) {
      const wallet = await loadWallet(reporterKey, { provider, password: () => this.askPassword('Reporter keystore password') })
      reporterClient = new FlyTrapClient(contract.address, wallet)
      reporterAddress = wallet.address
      if (!(await contract.isReporter(wallet.address))) {
        warn(`${wallet.address} is not a registered reporter on ${contract.address}: its ban reports will be refused until the admin runs \`flytrap contract reporter add ${wallet.address}\``)
      }
    } else if (options.bans.subjectKey) {
      warn('--ban-key without a reporter key: bans stay local to this proxy (pass --reporter-key or set FLYTRAP_REPORTER_KEY)')
    }

    // Every chain write (bans, anchors, reports) goes through one durable outbox; the journal records decisions.
    const accountability = f.journal
      ? await openAccountability({ dataDir, periodMs, reporter: reporterClient, sink: isWorkerProcess() && index > 0 ? ipcSink : undefined, countryOf, sync: f['journal-sync'] as 'strict' | 'relaxed', deliveries: f['journal-deliveries'] as 'sensitive' | 'all', logger })
      : undefined
    const reporter = accountability?.outbox ?? reporterClient
    let proxy: ProxyHandle
    try {
      // Every decision goes to the journal as it is made; its acknowledgement waits for it (--journal-sync).
      proxy = await startProxy({ ...options, contract, reporter, chainId, fromBlock, logger, authWorkers: f['auth-workers'], durable: accountability?.durable, decisionDeliveries: f.journal ? (f['journal-deliveries'] as 'sensitive' | 'all') : undefined })
    } catch (err) {
      await accountability?.stop()
      throw listenError(err)
    }
    await accountability?.attach(proxy)
    proxy.on('error', (err: Error) => logger.error('proxy error', { error: err.message }))

    const result: ProxyStartResult = {
      listening: proxy.addresses.map((a) => ({ url: `${a.tls ? 'mqtts' : 'mqtt'}://${hostForUrl(a.host)}:${a.port}`, host: a.host, port: a.port, tls: a.tls })),
      metrics: proxy.metricsAddress ? `http://${hostForUrl(proxy.metricsAddress.host)}:${proxy.metricsAddress.port}/metrics` : null,
      dataDir: f.journal ? dataDir : null,
      contract: parseAddress(contract.address, '--contract'),
      chainId,
      broker: brokerList(options)[0]!.url,
      brokers: brokerList(options).map((u) => u.url),
      reporter: reporterAddress,
    }
    if (isWorkerProcess()) {
      // The primary prints and handles signals; a worker ignores Ctrl-C and waits for its word.
      process.on('SIGINT', () => {})
      process.on('SIGTERM', () => {})
      await attachWorker(proxy, result, accountability?.outbox)
      await proxy.close({ graceMs })
      await accountability?.stop()
      process.exit(0)
    }
    if (this.jsonEnabled()) {
      this.logJson(result)
    } else {
      this.log(
        record([
          ['listening', result.listening.map((l) => l.url).join('\n')],
          ['broker', result.brokers.join('\n')],
          ['contract', `${result.contract} (chain ${chainId})`],
          ['policy', proxy.policyStatus().synced ? `synced at block ${proxy.policyStatus().block}` : `syncing from block ${fromBlock}…`],
          ['updates', options.rpcWs ? `eth_subscribe logs (polling every ${options.pollIntervalMs} ms while it is down)` : `polling every ${options.pollIntervalMs} ms (--rpc-ws ws://… for subscriptions)`],
          ['bans', result.reporter ? `shared on chain by ${result.reporter}` : 'local to this proxy'],
          ['metrics', result.metrics ?? 'off (--metrics host:port)'],
        ]),
      )
      if (!proxy.policyStatus().synced) proxy.once('policy-synced', (e) => this.log(`policy synced at block ${e.block}`))
      this.log('Press Ctrl-C to stop.')
    }

    const signal = await untilSignal()
    if (!this.jsonEnabled()) this.logToStderr(`${signal}: closing (up to ${graceMs} ms for sessions to end; again to force)`)
    const force = () => process.exit(130)
    process.once('SIGINT', force)
    process.once('SIGTERM', force)
    try {
      await proxy.close({ graceMs })
      await accountability?.stop()
    } finally {
      process.off('SIGINT', force)
      process.off('SIGTERM', force)
    }
    this.say('proxy stopped')
    return result
  }

  /** The cluster primary: forks the workers, prints where they listen, stops them on a signal. */
  private async runPrimary(n: number, graceMs: number, logger: ReturnType<typeof jsonLogger>): Promise<ProxyStartResult> {
    const primary = await startPrimary(n, (m) => logger.warn(m))
    const results = primary.results as ProxyStartResult[]
    const result: ProxyStartResult = { ...results[0]!, workers: n, metricsAll: results.map((r) => r.metrics).filter((m): m is string => Boolean(m)) }
    if (this.jsonEnabled()) this.logJson(result)
    else {
      this.log(record([['listening', result.listening.map((l) => l.url).join('\n')], ['workers', n], ['broker', result.broker], ['contract', `${result.contract} (chain ${result.chainId})`], ['metrics', result.metricsAll?.join('\n') || 'off']]))
      this.log('Press Ctrl-C to stop.')
    }
    const signal = await untilSignal()
    if (!this.jsonEnabled()) this.logToStderr(`${signal}: stopping ${n} workers (up to ${graceMs} ms)`)
    await primary.stop()
    this.say('proxy stopped')
    return result
  }

  /** --json: one compact line when ready; oclif's own print of the same result at exit is skipped. */
  override logJson(json: unknown): void {
    if (json === this.printed) return
    this.printed = json
    process.stdout.write(JSON.stringify(json) + '\n')
  }
}

/** host:port → host:(port + i); port 0 stays 0 (any free port). */
function offsetPort(hostPort: string, i: number): string {
  const at = hostPort.lastIndexOf(':')
  const port = Number(hostPort.slice(at + 1))
  return port === 0 ? hostPort : `${hostPort.slice(0, at)}:${port + i}`
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(s)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

function listenError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number }
  if (e?.code === 'EADDRINUSE') {
    return new FlytrapError(`cannot listen on ${e.address ?? ''}:${e.port ?? ''}: address already in use`, { exit: 'config', cause: err, suggestions: ['choose another --listen / --tls-listen / --metrics port, or stop what is using it'] })
  }
  if (e?.code === 'EACCES') {
    return new FlytrapError(`cannot listen on ${e.address ?? ''}:${e.port ?? ''}: permission denied`, { exit: 'config', cause: err, suggestions: ['ports below 1024 need privileges: use e.g. --listen 0.0.0.0:1883'] })
  }
  if (e?.code === 'EADDRNOTAVAIL') {
    return new FlytrapError(`cannot listen on ${e.address ?? ''}: no such address on this machine`, { exit: 'config', cause: err, suggestions: ['use 0.0.0.0 (all interfaces) or an address this machine has'] })
  }
  return err
}
