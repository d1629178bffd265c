import { Args, Flags } from '@oclif/core'
import { join } from 'node:path'
import { ChainCommand } from '../../lib/cli/base.js'
import { chalk, record } from '../../lib/cli/output.js'
import type { FlyTrapClient } from '../../lib/chain/client.js'
import { deploymentFor, flytrapDir } from '../../lib/config/store.js'
import { ExitCode, FlytrapError } from '../../lib/errors.js'
import { forgetSubject, validateSubject, type ForgetResult } from '../../lib/audit/forget.js'
import { verifyJournal } from '../../lib/audit/verify.js'

export interface AuditForgetResult extends ForgetResult {
  /** The journal re-verified after the redaction: every root still matches (anchors when the chain was reachable). */
  verify: { ok: boolean; anchorsChecked: boolean; periodsVerified: number; reason?: string; firstProblem: string | null }
}

export default class AuditForget extends ChainCommand<typeof AuditForget> {
  static override summary = "Erase an address's personal data from the audit journal (GDPR), keeping every root verifiable"

  static override description = `Erase a client's personal data from the local audit journal (GDPR erasure): every entry that mentions the
address (or IP address) keeps only its seq, time and salted leaf hash, so every anchored root and proof still
verifies while the content is gone. The proxy using the data directory must be stopped. The journal is
verified again afterwards.`

  static override examples = ['<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '<%= config.bin %> <%= command.id %> 203.0.113.7 --data-dir /var/lib/flytrap --json']

  static override args = { address: Args.string({ description: 'client address (0x…) or IP address to forget' }) }

  static override flags = {
    'data-dir': Flags.string({ description: "the proxy's data directory (the journal is in <data-dir>/journal) [default: .flytrap/proxy]", env: 'FLYTRAP_DATA_DIR' }),
    'from-block': Flags.integer({ description: 'block to read anchors from [default: the recorded deployment block, else 0]', min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditForgetResult> {
    const subject = validateSubject(await this.need(this.args.address, 'ADDRESS', 'Address to forget'))
    const dataDir = this.flags['data-dir'] ?? join(flytrapDir(), 'proxy')
    const forgot = await this.spin('Redacting', () => forgetSubject({ dataDir, subject }))
    const chain = await this.anchorSource()
    const report = await this.spin('Verifying the journal', () => verifyJournal({ dataDir, ...chain }))
    const result: AuditForgetResult = {
      ...forgot,
      verify: { ok: report.ok, anchorsChecked: report.anchors.checked, periodsVerified: report.anchors.verified, reason: report.anchors.reason, firstProblem: report.firstProblem },
    }
    if (!this.jsonEnabled()) {
      this.log(
        record([
          ['forgotten', subject],
          ['entries redacted', forgot.redacted],
          ['segments rewritten', forgot.segments.join(' ') || '-'],
          ['journal afterwards', report.ok ? (report.anchors.checked ? `intact; ${report.anchors.verified} anchored period(s) still verify` : 'hash chain intact (anchors were not checked)') : 'FAILED'],
        ]),
      )
      if (report.ok) this.log(chalk.green(`✓ ${forgot.redacted} entr${forgot.redacted === 1 ? 'y' : 'ies'} redacted`))
    }
    if (!report.ok) {
      const msg = `redacted ${forgot.redacted} entries, but the journal does not verify: ${report.firstProblem}`
      if (this.jsonEnabled()) {
        process.stderr.write(`Error: ${msg}\n`)
        process.exitCode = ExitCode.verification
        return result
      }
      throw new FlytrapError(msg, { exit: 'verification', suggestions: ['run `flytrap audit verify` for the details'] })
    }
    return result
  }

  private async anchorSource(): Promise<{ client?: FlyTrapClient; fromBlock?: number; noChainReason?: string }> {
    try {
      const client = await this.client()
      const { chainId } = await this.chain()
      const d = deploymentFor(chainId)
      return { client, fromBlock: this.flags['from-block'] ?? (d && d.address.toLowerCase() === client.address.toLowerCase() ? d.block : 0) }
    } catch (err) {
      if (err instanceof FlytrapError && (err.exit === ExitCode.unreachable || err.exit === ExitCode.config)) return { noChainReason: err.message }
      throw err
    }
  }
}
