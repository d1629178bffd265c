/**
 * Base classes for every command. BaseCommand gives `--json`, error → exit-code mapping and output helpers;
 * ChainCommand adds the shared chain flags (`--rpc`, `--contract`, `--key`) resolved as
 * flag > FLYTRAP_* env > .flytrap/config.json > defaults, and lazily connects the one contract client.
 */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core'
import type { Ora } from 'ora'
import { connect, FlyTrapClient } from '../chain/client.js'
import { loadWallet } from '../chain/keys.js'
import { deploymentFor, flytrapDir, permissionedChains, readFileConfig } from '../config/project-dir.js'
import { appendReason } from '../config/reasons.js'
import { commitReason, isPublicChain } from '../chain/reasons.js'
import { parseAddress, roleMask, type RoleMask } from '../chain/codec.js'
import { FlytrapError, ExitCode } from '../errors.js'
import { spin } from './output.js'

export type CmdFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type ChainCmdFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof ChainCommand)['baseFlags'] & T['flags']>
export type CmdArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export const DEFAULT_RPC = 'http://127.0.0.1:8545'

/** `--reason` and `--reason-private`, for every command that records a reason on chain for a topic. */
export const reasonFlags = {
  reason: Flags.string({ description: 'why (recorded on chain: in clear, public and permanent, unless --reason-private)', default: '' }),
  'reason-private': Flags.boolean({ description: 'put only a salted commitment of --reason on chain; the text and salt stay in <config dir>/reasons.jsonl, to be disclosed in evidence bundles' }),
}

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

  /**
   * A destructive step: goes ahead with --yes, asks on a TTY, and otherwise refuses (a script must say --yes,
   * it never gets a silent default).
   */
  protected async confirmOrRefuse(question: string, yes: boolean | undefined): Promise<void> {
    if (yes) return
    if (this.interactive) {
      const { confirm } = await import('@inquirer/prompts')
      if (await confirm({ message: question, default: false })) return
      throw new FlytrapError('cancelled: nothing was changed', { exit: 'usage' })
    }
    throw new FlytrapError(`${question.replace(/\?$/, '')}: refused without confirmation`, { exit: 'usage', suggestions: ['pass --yes to confirm (there is no terminal to ask on)'] })
  }

  /** --pub/--sub: the flags given, else a choice on a TTY, else a usage error. */
  protected async needRoles(pub: boolean, sub: boolean): Promise<RoleMask> {
    if (pub || sub || !this.interactive) return roleMask(pub, sub)
    const { checkbox } = await import('@inquirer/prompts')
    const picked = await checkbox({ message: 'Roles', required: true, choices: [{ name: 'publish (--pub)', value: 'pub' }, { name: 'subscribe (--sub)', value: 'sub' }] })
    return roleMask(picked.includes('pub'), picked.includes('sub'))
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

  public override async init(): Promise<void> {
    await super.init()
    const f = this.flags as { reason?: string; 'reason-private'?: boolean }
    if (f['reason-private'] && !f.reason) throw new FlytrapError('--reason-private needs a --reason to commit to', { exit: 'usage' })
    // Before any RPC: a short or mistyped address would otherwise reach ethers as an ENS name.
    if (this.flags.contract !== undefined) parseAddress(this.flags.contract, '--contract')
  }

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
    if (explicit) return parseAddress(explicit, this.flags.contract === undefined ? 'the contract in .flytrap/config.json' : '--contract')
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

  /** Whether this chain is public (not a local dev chain, not listed as permissioned): what goes on it is for everyone, forever. */
  protected async publicChain(): Promise<{ chainId: number; public: boolean }> {
    const { chainId } = await this.chain()
    return { chainId, public: isPublicChain(chainId, permissionedChains()) }
  }

  /** A warning on stderr only (never on --json's stdout). */
  protected stderrWarning(text: string): void {
    process.stderr.write(`warning: ${text}\n`)
  }

  /**
   * The reason string to send on chain. In clear: as typed, with a warning on a public chain. Private: the
   * commitment `commit:0x…` (src/lib/chain/reasons.ts), after the clear text and its salt were appended
   * durably to <config dir>/reasons.jsonl, so they can be disclosed later and never go on chain.
   */
  protected async onChainReason(text: string, opts: { private: boolean; action: string; topic: string; client?: string }): Promise<{ reason: string; commitment: string | null; reasonsFile: string | null }> {
    if (opts.private && text === '') throw new FlytrapError('--reason-private needs a --reason to commit to', { exit: 'usage' })
    const chain = await this.publicChain()
    if (!opts.private) {
      if (text !== '' && chain.public) this.stderrWarning(`chain ${chain.chainId} is public: the reason "${text}" will be readable by anyone, permanently (it can never be erased). Use --reason-private to put only a commitment on chain.`)
      return { reason: text, commitment: null, reasonsFile: null }
    }
    const c = commitReason(text)
    const file = await appendReason({ v: 1, commitment: c.commitment, salt: c.salt, text, chainId: chain.chainId, contract: (await this.contractAddress()).toLowerCase(), topic: opts.topic, client: (opts.client ?? '').toLowerCase(), action: opts.action, at: Date.now() }, flytrapDir())
    return { reason: c.onChain, commitment: c.commitment, reasonsFile: file }
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
