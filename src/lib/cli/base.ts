/**
 * Base classes for every command. BaseCommand gives `--json`, error → exit-code mapping and output helpers;
 * ChainCommand adds the shared chain flags (`--rpc`, `--contract`, `--key`) resolved as
 * flag > FLYTRAP_* env > .flytrap/config.json > defaults, and lazily connects the one contract client.
 */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core'
import type { Ora } from 'ora'
import { connect, FlyTrapClient } from '../chain/client.js'
import { loadWallet } from '../chain/keys.js'
import { deploymentFor, readFileConfig } from '../config/store.js'
import { FlytrapError, ExitCode } from '../errors.js'
import { spin } from './output.js'

export type CmdFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type ChainCmdFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof ChainCommand)['baseFlags'] & T['flags']>
export type CmdArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export const DEFAULT_RPC = 'http://127.0.0.1:8545'

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {}

  protected flags!: CmdFlags<T>
  protected args!: CmdArgs<T>

  public override async init(): Promise<void> {
    await super.init()
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CmdFlags<T>
    this.args = args as CmdArgs<T>
  }

  /** Prompts are for people: only on a TTY and never with --json. */
  protected get interactive(): boolean {
    return Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY) && !this.jsonEnabled()
  }

  /** A required value: the given one, else a prompt on a TTY, else a usage error naming the flag/arg. */
  protected async need(value: string | undefined, name: string, message: string): Promise<string> {
    if (value !== undefined && value !== '') return value
    if (this.interactive) {
      const { input } = await import('@inquirer/prompts') // loaded only when someone is there to answer
      return input({ message, required: true })
    }
    throw new FlytrapError(`missing ${name}`, { exit: 'usage', suggestions: [`see \`${this.config.bin} ${this.id?.replaceAll(':', ' ')} --help\``] })
  }

  protected async askPassword(message: string): Promise<string | undefined> {
    if (!this.interactive) return undefined
    const { password } = await import('@inquirer/prompts')
    return password({ message, mask: true })
  }

  protected spin<R>(text: string, work: (s: Ora) => Promise<R>): Promise<R> {
    return spin(text, work, { enabled: !this.jsonEnabled() })
  }

  /** Human output only; --json prints the returned result instead. */
  protected say(text: string): void {
    if (!this.jsonEnabled()) this.log(text)
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    const cli = toCliError(err)
    process.exitCode = cli.oclif.exit
    return super.catch(cli)
  }
}

/** One-line messages with exit codes; stacks only with DEBUG set. */
export function toCliError(err: unknown): Errors.CLIError {
  if (err instanceof FlytrapError) {
    return new Errors.CLIError(err.message, { exit: err.exit, code: err.code, suggestions: err.suggestions })
  }
  if (err instanceof Errors.CLIError) return err
  if (err instanceof Error && err.name === 'ExitPromptError') return new Errors.CLIError('cancelled', { exit: ExitCode.usage })
  const message = err instanceof Error ? err.message : String(err)
  if (process.env.DEBUG && err instanceof Error) console.error(err.stack)
  return new Errors.CLIError(message, { exit: ExitCode.failure, code: 'FLYTRAP_FAILURE' })
}

export abstract class ChainCommand<T extends typeof Command> extends BaseCommand<T> {
  static override baseFlags = {
    rpc: Flags.string({ description: `Ethereum JSON-RPC URL (http(s) or ws(s)) [default: ${DEFAULT_RPC}]`, env: 'FLYTRAP_RPC', helpGroup: 'CHAIN' }),
    contract: Flags.string({ description: 'FlyTrap contract address [default: the one `contract deploy` recorded for this chain]', env: 'FLYTRAP_CONTRACT', helpGroup: 'CHAIN' }),
    key: Flags.string({ description: 'signing key: 0x hex private key, or path to an encrypted JSON keystore (password from FLYTRAP_KEY_PASSWORD or a prompt)', env: 'FLYTRAP_KEY', helpGroup: 'CHAIN' }),
  }

  declare protected flags: ChainCmdFlags<T>
  private connection?: Awaited<ReturnType<typeof connect>>

  protected get rpcUrl(): string {
    return this.flags.rpc ?? readFileConfig().rpc ?? DEFAULT_RPC
  }

  protected async chain(): Promise<Awaited<ReturnType<typeof connect>>> {
    this.connection ??= await connect(this.rpcUrl)
    return this.connection
  }

  /** The contract address: flag/env, else config file, else the deployment recorded for this chain. */
  protected async contractAddress(): Promise<string> {
    const explicit = this.flags.contract ?? readFileConfig().contract
    if (explicit) return explicit
    const { chainId } = await this.chain()
    const recorded = deploymentFor(chainId)
    if (!recorded) {
      throw new FlytrapError(`no FlyTrap contract recorded for chain ${chainId}`, {
        exit: 'config',
        suggestions: ['deploy one with `flytrap contract deploy`, or pass --contract <address>'],
      })
    }
    return recorded.address
  }

  /** The contract client; with `write`, bound to the signer from --key. */
  protected async client(opts: { write?: boolean } = {}): Promise<FlyTrapClient> {
    const { provider } = await this.chain()
    const address = await this.contractAddress()
    const runner = opts.write ? await this.signer() : provider
    const client = new FlyTrapClient(address, runner)
    await client.assertDeployed()
    return client
  }

  protected async signer(): Promise<Awaited<ReturnType<typeof loadWallet>>> {
    const { provider } = await this.chain()
    return (await this.keyOnly()).connect(provider)
  }

  /** The key from --key without touching the chain (for offline signing). */
  protected async keyOnly(): Promise<Awaited<ReturnType<typeof loadWallet>>> {
    const key = this.flags.key ?? readFileConfig().key
    if (!key) {
      throw new FlytrapError('this command sends a transaction and needs a key', {
        exit: 'config',
        suggestions: ['pass --key <0x…|keystore.json> or set FLYTRAP_KEY'],
      })
    }
    return loadWallet(key, { password: () => this.askPassword('Keystore password') })
  }

  public override async finally(err: Error | undefined): Promise<unknown> {
    this.connection?.provider.destroy()
    return super.finally(err)
  }
}
