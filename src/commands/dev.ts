import { accessSync, constants } from 'node:fs'
import { delimiter, isAbsolute, join, relative } from 'node:path'
import { Flags } from '@oclif/core'
import { BaseCommand, DEFAULT_RPC } from '../lib/cli/base.js'
import { chalk, record } from '../lib/cli/output.js'
import { DEMO_TOPIC, DEV_PERIOD_MS, DEV_REPORTER_INDEX, startDevStack, type DevStack } from '../lib/dev/dev-stack.js'
import { FlytrapError } from '../lib/errors.js'
import { jsonLogger } from '../lib/log.js'
import type { Level } from '../lib/log.js'
import { parseDuration } from '../lib/parse/units.js'

export interface DevResult {
  rpcUrl: string
  chainId: number
  contract: string
  /** The broker behind the proxy: its URL. */
  broker: string
  /** mosquitto (started by dev, installed on this machine), embedded (aedes, in the dev process) or external (--broker URL). */
  brokerKind: 'mosquitto' | 'embedded' | 'external'
  brokerName: string
  /** What the broker lacks (the embedded one: shared subscriptions, persistence, TLS). */
  brokerLacks: string[]
  /** The proxy's journal, outbox and reporting state; null with --no-journal. */
  dataDir: string | null
  /** The anchoring period in seconds. */
  period: number
  /** The proxy's reporter (anchors, reports, bans): dev account #9. */
  reporter: string
  bans: { threshold: number; windowSeconds: number; durationSeconds: number }
  /** mqtt://host:port where devices connect. */
  proxy: string
  /** The file anvil keeps the chain in between runs. */
  stateFile: string
  /** A contract was deployed on this start (first run, --fresh, or the recorded one was gone). */
  deployed: boolean
  demoTopic: string
  /** How policy changes reach the proxy: eth_subscribe on anvil's WebSocket, or polling (while that is down). */
  policyUpdates: 'subscription' | 'polling'
  /** Anvil's first dev accounts: public, well-known test keys. */
  devKeys: { index: number; address: string; privateKey: string; note: string }[]
  /** Copy-paste commands to try the stack. */
  commands: string[]
}

export default class Dev extends BaseCommand<typeof Dev> {
  static override description = `Run a complete local FlyTrap: the bundled anvil chain (kept in .flytrap/dev/anvil-state.json between runs),
the contract, a broker (mosquitto when it is installed, else the embedded aedes from npm) and the proxy with its
journal (.flytrap/dev/proxy, anchored every minute by dev account #9), with a demo topic. Ctrl-C stops everything.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --port 11883 --fresh',
    '<%= config.bin %> <%= command.id %> --broker embedded   # the in-process broker even when mosquitto is installed',
    '<%= config.bin %> <%= command.id %> --broker mqtt://127.0.0.1:1884 --json',
  ]
  static override flags = {
    port: Flags.integer({ description: 'port the proxy listens on (devices connect here)', default: 1883, min: 0, max: 65_535 }),
    host: Flags.string({ description: 'address the proxy listens on', default: '127.0.0.1' }),
    broker: Flags.string({ description: 'auto: mosquitto if installed, else the embedded broker (aedes, MQTT 5 and 3.1.1, no shared subscriptions); mosquitto; embedded; or the mqtt://host:port of a running broker', default: 'auto' }),
    period: Flags.string({ description: `anchoring and reporting period of the dev proxy (whole seconds: 30s, 1m) [default: ${DEV_PERIOD_MS / 1000}s]` }),
    journal: Flags.boolean({ description: 'keep the proxy\'s journal and anchor it (--no-journal: decisions are not recorded)', default: true, allowNo: true }),
    'anvil-port': Flags.integer({ description: 'port for the anvil JSON-RPC endpoint', default: 8545, min: 0, max: 65_535 }),
    fresh: Flags.boolean({ description: 'start from a new chain (forgets topics, grants and the contract of earlier runs)' }),
    'public-sensitive-lists': Flags.boolean({ description: 'deploy the contract so that sensitive-topic reports name addresses in clear (as on a permissioned chain); applies when a contract is deployed (first run or --fresh)' }),
    'log-level': Flags.string({ description: 'proxy log lines (JSON, on stderr) at this level and above', options: ['debug', 'info', 'warn', 'error'], default: 'info' }),
  }

  private printed?: unknown

  async run(): Promise<DevResult> {
    const f = this.flags
    // A Ctrl-C during start-up is honoured once everything started so far can be stopped cleanly.
    const stopRequested = untilSignal()

    const periodMs = f.period === undefined ? DEV_PERIOD_MS : parseDuration(f.period, '--period', { min: 1_000, max: 86_400_000, bare: 'ms' })
    if (periodMs % 1000 !== 0) throw new FlytrapError('--period must be a whole number of seconds', { exit: 'usage' })
    const stack = await this.spin('Starting anvil, the contract, the broker and the proxy', (s) =>
      startDevStack({
        proxyHost: f.host,
        proxyPort: f.port,
        anvilPort: f['anvil-port'],
        broker: f.broker,
        journal: f.journal,
        periodMs,
        fresh: f.fresh,
        publicSensitiveLists: f['public-sensitive-lists'],
        logger: jsonLogger(f['log-level'] as Level),
        onStep: (text) => (s.text = text),
      }),
    )
    const result = this.describe(stack)
    if (this.jsonEnabled()) this.logJson(result)
    else this.log(this.summary(stack, result))

    const signal = await stopRequested
    if (!this.jsonEnabled()) this.logToStderr(`${signal}: stopping the proxy, the broker and anvil…`)
    const force = () => process.exit(130)
    process.once('SIGINT', force)
    process.once('SIGTERM', force)
    try {
      await stack.stop()
    } finally {
      process.off('SIGINT', force)
      process.off('SIGTERM', force)
    }
    this.say(`stopped${stack.stateFile ? ` (chain saved in ${stack.stateFile})` : ''}`)
    return result
  }

  private describe(stack: DevStack): DevResult {
    // `flytrap` when it is on this shell's PATH (npm link, a global install); else as the README runs it.
    const bin = onPath(this.config.bin) && process.env.npm_command !== 'exec' ? this.config.bin : `npx ${this.config.bin}`
    const rpc = stack.rpcUrl === DEFAULT_RPC ? '' : ` --rpc ${stack.rpcUrl}`
    const [k0, k1, k2] = stack.devKeys
    const { hostname, port } = new URL(stack.proxyUrl)
    const at = `-h ${hostname.replace(/^\[|\]$/g, '')} -p ${port}`
    const sign = (clientId: string) => `$(${bin} device sign${rpc} --key ${k1!.privateKey} --client-id ${clientId} --format mosquitto)`
    // mosquitto_sub/pub where the mosquitto clients are installed; else MQTT.js's own CLI (a flytrap dependency), over 3.1.1.
    const mosquittoClients = onPath('mosquitto_sub')
    const sign311 = (clientId: string) => `$(${bin} device sign${rpc} --key ${k1!.privateKey} --client-id ${clientId} --format mosquitto --mqtt-version 3.1.1)`
    const dataDir = stack.dataDir ? ` --data-dir ${relativeToCwd(stack.dataDir)}` : ''
    const commands = [
      `${bin} topic add sensors/temp --open${rpc} --key ${k0!.privateKey}`,
      `${bin} device sign${rpc} --key ${k1!.privateKey} --client-id dev-1 --format mosquitto`,
      mosquittoClients ? `mosquitto_sub ${at} -t ${DEMO_TOPIC} -v ${sign('dev-1')}` : `npx mqtt sub ${at} -t ${DEMO_TOPIC} -v ${sign311('dev-1')}`,
      mosquittoClients ? `mosquitto_pub ${at} -t ${DEMO_TOPIC} -m "hello from FlyTrap" ${sign('dev-2')}` : `npx mqtt pub ${at} -t ${DEMO_TOPIC} -m "hello from FlyTrap" ${sign311('dev-2')}`,
      `${bin} topic join ${DEMO_TOPIC} --pub --sub${rpc} --key ${k2!.privateKey}`,
      ...(stack.dataDir ? [`${bin} audit verify${dataDir}${rpc}`, `${bin} audit serve${dataDir}${rpc}`] : []),
    ]
    const notes = ['contract admin, owner of demo/hello', `joined ${DEMO_TOPIC} (publish + subscribe)`, 'not a member of anything yet']
    return {
      rpcUrl: stack.rpcUrl,
      chainId: stack.chainId,
      contract: stack.contract,
      broker: stack.brokerUrl,
      brokerKind: stack.brokerKind,
      brokerName: stack.brokerName,
      brokerLacks: stack.brokerLacks,
      dataDir: stack.dataDir,
      period: stack.periodMs / 1000,
      reporter: stack.reporter,
      bans: { threshold: stack.bans.threshold, windowSeconds: stack.bans.windowMs / 1000, durationSeconds: stack.bans.durationMs / 1000 },
      proxy: stack.proxyUrl,
      stateFile: stack.stateFile ?? '',
      deployed: stack.deployed,
      demoTopic: DEMO_TOPIC,
      policyUpdates: stack.proxy.policyStatus().mode,
      devKeys: stack.devKeys.slice(0, 3).map((k, i) => ({ ...k, note: notes[i]! })),
      commands,
    }
  }

  private summary(stack: DevStack, r: DevResult): string {
    const b = chalk.bold
    const dim = chalk.dim
    const lines = [
      '',
      b('FlyTrap dev stack is running'),
      record([
        ['RPC', `${r.rpcUrl} (chain ${r.chainId})`],
        ['contract', `${r.contract}${stack.deployed ? ' (deployed now)' : ''}`],
        ['chain state', r.stateFile],
        ['broker', `${r.broker}  ${r.brokerName}${r.brokerKind === 'mosquitto' ? ', started by dev' : ''}`],
        ...(r.brokerLacks.length ? [['broker lacks', r.brokerLacks.join('\n') + '\n(install mosquitto for these; it is used whenever it is on the PATH)'] as [string, string]] : []),
        ['proxy', `${r.proxy}  ← devices connect here`],
        ['policy', stack.synced ? `synced (block ${stack.proxy.policyStatus().block})` : 'still syncing…'],
        ['journal', r.dataDir ? `${relativeToCwd(r.dataDir)}, anchored every ${r.period} s by dev account #${DEV_REPORTER_INDEX} (${r.reporter})` : 'off (--no-journal)'],
        ['bans', `after ${r.bans.threshold} failures within ${r.bans.windowSeconds} s, for ${r.bans.durationSeconds} s (lenient, for development)`],
      ]),
      '',
      b('Anvil dev accounts') + ' — ' + chalk.yellow('public, well-known test keys: never use them on a real network'),
      ...r.devKeys.map((k) => `  #${k.index}  ${k.address}  ${k.privateKey}\n      ${dim(k.note)}`),
      '',
      b('Try it') + dim(' (another terminal, this directory)'),
      dim('  # register your own topic (account #0 pays the registration fee)'),
      `  ${r.commands[0]}`,
      dim('  # the CONNECT credential a device uses (account #1, client id dev-1)'),
      `  ${r.commands[1]}`,
      dim(`  # subscribe and publish through the proxy (account #1 joined ${DEMO_TOPIC})`),
      `  ${r.commands[2]}`,
      `  ${r.commands[3]}`,
      dim(`  # let account #2 in as well (${DEMO_TOPIC} is open and free)`),
      `  ${r.commands[4]}`,
      ...(r.dataDir
        ? [dim(`  # the journal's anchors (one per ${r.period} s period, on chain a few seconds after it ends), and the auditor UI`), `  ${r.commands[5]}`, `  ${r.commands[6]}`]
        : []),
      '',
      `Ctrl-C stops the proxy, the broker and anvil${r.stateFile ? ' (the chain is saved; --fresh starts over)' : ''}.`,
    ]
    return lines.join('\n')
  }

  /** --json: one compact line once ready; oclif's own print of the same result at exit is skipped. */
  override logJson(json: unknown): void {
    if (json === this.printed) return
    this.printed = json
    process.stdout.write(JSON.stringify(json) + '\n')
  }
}

/** A path as the user would type it from here (the printed commands run in this directory). */
function relativeToCwd(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
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
