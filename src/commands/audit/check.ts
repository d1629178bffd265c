import { readFileSync } from 'node:fs'
import { Args, Flags } from '@oclif/core'
import { BaseCommand, DEFAULT_RPC } from '../../lib/cli/base.js'
import { chalk, record } from '../../lib/cli/output.js'
import { connect } from '../../lib/chain/client.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { ExitCode, FlytrapError, usageError } from '../../lib/errors.js'
import { checkBundle, STEPS, type CheckResult } from '../../lib/audit/evidence/check.js'

export type AuditCheckResult = CheckResult & { bundle: string }

export default class AuditCheck extends BaseCommand<typeof AuditCheck> {
  static override summary = 'Check an evidence bundle with only the bundle and a chain node'

  static override description = `Verifies an evidence bundle from \`audit export\`: its signature (by a reporter registered when it anchored),
every entry's leaf recomputed from content and salt, every Merkle path to its anchored root, every anchor, policy
event, summary and reporter event against the chain (receipt, log index, emitting contract, arguments, block hash),
the completeness of a filtered bundle (its scope-index openings), and redactions against their signed erasure
records. Needs no data directory, no configuration and no trust in the operator. Exit 0 only when everything holds;
exit 7 naming the first failing record otherwise. --offline checks everything that needs no chain node and says so.`

  static override examples = ['<%= config.bin %> <%= command.id %> vitals.evidence.json --rpc https://rpc.example.org', '<%= config.bin %> <%= command.id %> bundle.json --offline --json']

  static override args = { bundle: Args.string({ description: 'the bundle file', required: true }) }

  static override flags = {
    rpc: Flags.string({ description: `Ethereum JSON-RPC URL of a node of the bundle's chain [default: ${DEFAULT_RPC}]`, env: 'FLYTRAP_RPC' }),
    contract: Flags.string({ description: 'the FlyTrap contract you trust (from its deployment record, not from the bundle): the bundle must be for it [default: the one the bundle names, shown in the output]' }),
    offline: Flags.boolean({ description: 'check only what needs no chain node (anchors, events and reporters are then NOT checked)', default: false }),
  }

  async run(): Promise<AuditCheckResult> {
    if (this.flags.offline && this.flags.rpc !== undefined && process.env.FLYTRAP_RPC !== this.flags.rpc) throw usageError('--offline checks without a chain node: leave out --rpc')
    const contract = this.flags.contract === undefined ? undefined : parseAddress(this.flags.contract, '--contract')
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(this.args.bundle, 'utf8'))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new FlytrapError(code ? `cannot read ${this.args.bundle}: ${code}` : `${this.args.bundle} is not JSON`, { exit: code ? 'usage' : 'verification' })
    }
    let connection: Awaited<ReturnType<typeof connect>> | undefined
    try {
      if (!this.flags.offline) connection = await connect(this.flags.rpc ?? DEFAULT_RPC)
      const result = await this.spin(this.flags.offline ? 'Checking the bundle (offline)' : 'Checking the bundle against the chain', () => checkBundle(raw, { provider: connection?.provider, contract }))
      const out: AuditCheckResult = { bundle: this.args.bundle, ...result }
      this.show(out)
      if (result.ok) return out
      const failure = result.firstFailure?.message ?? 'the bundle does not check'
      if (this.jsonEnabled()) {
        process.stderr.write(`Error: ${failure}\n`)
        process.exitCode = ExitCode.verification
        return out
      }
      throw new FlytrapError(failure, { exit: 'verification', code: 'EVIDENCE_INVALID' })
    } finally {
      connection?.provider.destroy()
    }
  }

  private show(r: AuditCheckResult): void {
    if (this.jsonEnabled()) return
    const mark = (st: string) => (st === 'ok' ? chalk.green('ok') : st === 'failed' ? chalk.red('FAILED') : chalk.yellow('not checked'))
    this.log(
      record([
        ['bundle', `${r.bundle}${r.format ? ` (${r.format} v${r.version})` : ''}`],
        ...(r.scope
          ? ([
              ['scope', `${r.scope.from} .. ${r.scope.to} (${r.scope.periods} anchored period(s))${r.scope.topic ? `, topic ${r.scope.topic}` : ''}${r.scope.client ? `, client ${r.scope.client}` : ''}`],
              ['chain', `${r.chainId}, contract ${r.contract}`],
              ['signer', r.signer ?? '-'],
              ['entries', `${r.disclosed} disclosed, ${r.inScope.length} in scope, ${r.redacted.length} redacted`],
            ] as [string, string][])
          : []),
        ...STEPS.map((k) => [k, `${mark(r.steps[k].status)} (${r.steps[k].detail})`] as [string, string]),
      ]),
    )
    for (const f of r.failures.slice(0, 20)) this.log(chalk.red(`✗ ${f.message}`))
    if (r.failures.length > 20) this.log(chalk.red(`✗ … and ${r.failures.length - 20} more`))
    for (const w of r.warnings) this.log(chalk.yellow(`! ${w}`))
    if (r.ok && !this.flags.contract) this.log(chalk.yellow(`! the bundle is for contract ${r.contract} on chain ${r.chainId}: make sure that is the deployment you trust (or pass --contract)`))
    if (r.ok) this.log(chalk.green(r.offline ? '✓ the offline checks hold (the chain was NOT checked: run again with --rpc)' : '✓ the bundle holds: every record checks against the chain'))
  }
}
