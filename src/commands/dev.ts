import { Flags } from '@oclif/core'
import { BaseCommand, DEFAULT_RPC } from '../lib/cli/base.js'
import { chalk, record } from '../lib/cli/output.js'
import { DEMO_TOPIC, startDevStack, type DevStack } from '../lib/dev/stack.js'
import { jsonLogger } from '../lib/log.js'
import type { Level } from '../lib/log.js'

export interface DevResult {
  rpcUrl: string
  chainId: number
  contract: string
  /** The broker behind the proxy (mosquitto started by dev, or --broker). */
  broker: string
  /** mqtt://host:port where devices connect. */
  proxy: string
  /** The file anvil keeps the chain in between runs. */
  stateFile: string
  /** A contract was deployed on this start (first run, --fresh, or the recorded one was gone). */
  deployed: boolean
  demoTopic: string
  /** Anvil's first dev accounts: public, well-known test keys. */
  devKeys: { index: number; address: string; privateKey: string; note: string }[]
  /** Copy-paste commands to try the stack. */
  commands: string[]
}

export default class Dev extends BaseCommand<typeof Dev> {
  static override description = `Run a complete local FlyTrap: the bundled anvil chain (kept in .flytrap/dev/anvil-state.json between runs),
the contract, mosquitto and the proxy, with a demo topic. Ctrl-C stops everything.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --port 11883 --fresh', '<%= config.bin %> <%= command.id %> --broker mqtt://127.0.0.1:1884 --json']
  static override flags = {
    port: Flags.integer({ description: 'port the proxy listens on (devices connect here)', default: 1883, min: 0, max: 65_535 }),
    host: Flags.string({ description: 'address the proxy listens on', default: '127.0.0.1' }),
    broker: Flags.string({ description: 'use this broker (mqtt://host:port) instead of starting mosquitto' }),
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

    const stack = await this.spin('Starting anvil, the contract, mosquitto and the proxy', (s) =>
      startDevStack({
        proxyHost: f.host,
        proxyPort: f.port,
        anvilPort: f['anvil-port'],
        brokerUrl: f.broker,
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
    if (!this.jsonEnabled()) this.logToStderr(`${signal}: stopping the proxy, mosquitto and anvil…`)
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
    const bin = this.config.bin
    const rpc = stack.rpcUrl === DEFAULT_RPC ? '' : ` --rpc ${stack.rpcUrl}`
    const [k0, k1, k2] = stack.devKeys
    const { hostname, port } = new URL(stack.proxyUrl)
    const at = `-h ${hostname.replace(/^\[|\]$/g, '')} -p ${port}`
    const sign = (clientId: string) => `$(${bin} device sign${rpc} --key ${k1!.privateKey} --client-id ${clientId} --format mosquitto)`
    const commands = [
      `${bin} topic add sensors/temp --open${rpc} --key ${k0!.privateKey}`,
      `${bin} device sign${rpc} --key ${k1!.privateKey} --client-id dev-1 --format mosquitto`,
      `mosquitto_sub ${at} -t ${DEMO_TOPIC} -v ${sign('dev-1')}`,
      `mosquitto_pub ${at} -t ${DEMO_TOPIC} -m "hello from FlyTrap" ${sign('dev-2')}`,
      `${bin} topic join ${DEMO_TOPIC} --pub --sub${rpc} --key ${k2!.privateKey}`,
    ]
    const notes = ['contract admin, reporter, owner of demo/hello', `joined ${DEMO_TOPIC} (publish + subscribe)`, 'not a member of anything yet']
    return {
      rpcUrl: stack.rpcUrl,
      chainId: stack.chainId,
      contract: stack.contract,
      broker: stack.brokerUrl,
      proxy: stack.proxyUrl,
      stateFile: stack.stateFile ?? '',
      deployed: stack.deployed,
      demoTopic: DEMO_TOPIC,
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
        ['broker', `${r.broker}${stack.mosquitto ? ' (mosquitto, started by dev)' : ''}`],
        ['proxy', `${r.proxy}  ← devices connect here`],
        ['policy', stack.synced ? `synced (block ${stack.proxy.policyStatus().block})` : 'still syncing…'],
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
      '',
      `Ctrl-C stops the proxy, mosquitto and anvil${r.stateFile ? ' (the chain is saved; --fresh starts over)' : ''}.`,
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
