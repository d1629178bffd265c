import { Args, Flags } from '@oclif/core'
import { join } from 'node:path'
import type { Provider } from 'ethers'
import { ChainCommand } from '../../lib/cli/base.js'
import { chalk, record } from '../../lib/cli/output.js'
import type { FlyTrapClient } from '../../lib/chain/client.js'
import type { ReceiptLookup } from '../../lib/chain/outbox-scrub.js'
import { deploymentFor, flytrapDir } from '../../lib/config/project-dir.js'
import { ExitCode, FlytrapError } from '../../lib/errors.js'
import { forgetSubject, planForget, validateSubject, type ForgetResult } from '../../lib/audit/forget.js'
import { verifyJournal } from '../../lib/audit/verify.js'

export interface AuditForgetResult extends ForgetResult {
  /** Each journal re-verified after the redaction: every root still matches (anchors when the chain was reachable). */
  verify: { dir: string; ok: boolean; anchorsChecked: boolean; periodsVerified: number; reason?: string; firstProblem: string | null }[]
  warnings: string[]
}

export default class AuditForget extends ChainCommand<typeof AuditForget> {
  static override summary = "Erase an address's or IP's personal data from the data directory (GDPR), with a signed erasure record"

  static override description = `Erase a client's personal data from the proxy's data directory (GDPR art. 17). Every journal entry that
mentions the address (or IP address) keeps only its seq, time, salted leaf hash and chain link, so every
anchored root and proof still verifies while the content is gone; an erasure record signed with the reporter
key (--key) is appended to the journal first, saying when, on whose request and on what legal basis which
entries were redacted (audit verify accepts only redactions such a record covers). The subject is also
scrubbed from the outbox (chain writes already mined) and from every other file in the data directory; the
command says what it could not scrub. The proxy using the data directory must be stopped. Asks for
confirmation on a terminal; pass --yes otherwise.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "GDPR art. 17(1)(b), consent withdrawn" --requested-by "data subject, ticket 4711" --key reporter.json',
    '<%= config.bin %> <%= command.id %> 203.0.113.7 --reason "GDPR art. 17" --requested-by DPO --data-dir /var/lib/flytrap --yes --json',
  ]

  static override args = { address: Args.string({ description: 'client address (0x…) or IP address to forget' }) }

  static override flags = {
    reason: Flags.string({ description: 'the legal basis of the erasure (recorded in the signed erasure record)' }),
    'requested-by': Flags.string({ description: 'on whose request the erasure is made (recorded; must not name the subject)' }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for confirmation (required without a terminal)', default: false }),
    'data-dir': Flags.string({ description: "the proxy's data directory (the journal is in <data-dir>/journal) [default: .flytrap/proxy]", env: 'FLYTRAP_DATA_DIR' }),
    'from-block': Flags.integer({ description: 'block to read anchors from [default: the recorded deployment block, else 0]', min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditForgetResult> {
    // Nothing is touched before the answer is known: without a terminal to ask on, only --yes goes ahead.
    if (!this.flags.yes && !this.interactive) {
      throw new FlytrapError('audit forget erases data for good and needs a confirmation: pass --yes (there is no terminal to ask on)', { exit: 'usage' })
    }
    const subject = validateSubject(await this.need(this.args.address, 'ADDRESS', 'Address or IP address to forget'))
    const basis = await this.need(this.flags.reason, '--reason', 'Legal basis of the erasure')
    const requestedBy = await this.need(this.flags['requested-by'], '--requested-by', 'On whose request')
    const dataDir = this.flags['data-dir'] ?? join(flytrapDir(), 'proxy')
    const signer = await this.keyOnly().catch((err: unknown) => {
      if (err instanceof FlytrapError && err.exit === ExitCode.config) {
        throw new FlytrapError('the erasure record is signed with the reporter key: pass --key (the key the proxy anchors with)', { exit: 'config', suggestions: err.suggestions })
      }
      throw err
    })
    const warnings: string[] = []
    const chain = await this.anchorSource()
    if (chain.client) {
      if (!(await chain.client.isReporter(signer.address))) {
        throw new FlytrapError(`${signer.address} is not a registered reporter of ${chain.client.address}: audit verify would not accept its erasure record`, {
          exit: 'config',
          suggestions: ['pass the key the proxy anchors with (--key)'],
        })
      }
    } else warnings.push(`the chain was not reachable (${chain.noChainReason}): the signer could not be checked, and outbox writes not recorded as done are left as they are`)

    const plan = await planForget({ dataDir, subject })
    if (!this.flags.yes) {
      const { confirm } = await import('@inquirer/prompts')
      const what = `${plan.entries} journal entr${plan.entries === 1 ? 'y' : 'ies'} and ${plan.files.length} other file(s) in ${dataDir}`
      const ok = await confirm({ message: `Erase ${subject} from ${what}? This cannot be undone`, default: false })
      if (!ok) throw new FlytrapError('cancelled: nothing was changed', { exit: 'usage' })
    }

    const receipt: ReceiptLookup | undefined = chain.provider
      ? async (hash) => {
          const r = await chain.provider!.getTransactionReceipt(hash)
          return r ? { status: r.status } : null
        }
      : undefined
    const forgot = await this.spin('Redacting', () => forgetSubject({ dataDir, subject, basis, requestedBy, signer, receipt }))
    const verify: AuditForgetResult['verify'] = []
    for (const j of forgot.journals) {
      const report = await this.spin(`Verifying the journal${j.dir === '.' ? '' : ` in ${j.dir}`}`, () => verifyJournal({ dataDir: join(dataDir, j.dir), ...chain }))
      verify.push({ dir: j.dir, ok: report.ok, anchorsChecked: report.anchors.checked, periodsVerified: report.anchors.verified, reason: report.anchors.reason, firstProblem: report.firstProblem })
    }
    const result: AuditForgetResult = { ...forgot, verify, warnings }
    const ok = verify.every((v) => v.ok)
    if (!this.jsonEnabled()) {
      for (const w of warnings) this.warn(w)
      this.log(
        record([
          ['forgotten', subject],
          ['entries redacted', forgot.redacted],
          ...forgot.journals.map((j): [string, string] => [
            `journal ${j.dir}`,
            `${j.redacted} redacted${j.erasureSeq !== null ? `, erasure record seq ${j.erasureSeq}` : ''}${j.completed.length > 0 ? `, completed erasure record(s) ${j.completed.join(', ')}` : ''}; segments rewritten: ${j.segments.join(' ') || '-'}`,
          ]),
          ['signed by', forgot.signer],
          ['subject commitment', forgot.commitment ? `${forgot.commitment.value} (salt ${forgot.commitment.salt}: kept nowhere else)` : '-'],
          ...forgot.outboxes.map((o): [string, string] => [`${o.dir}`, `${o.removed.length} mined write(s) removed, ${o.blanked} record(s) blanked, ${o.unsent.length} still to send`]),
          ['other files scrubbed', forgot.files.join(' ') || '-'],
          ...verify.map((v): [string, string] => [
            `journal ${v.dir} afterwards`,
            v.ok ? (v.anchorsChecked ? `intact; ${v.periodsVerified} anchored period(s) still verify` : 'hash chain intact (anchors were not checked)') : `FAILED: ${v.firstProblem}`,
          ]),
        ]),
      )
      this.log('Not scrubbed:')
      for (const n of forgot.notScrubbed) this.log(`  - ${n}`)
      if (ok) this.log(chalk.green(`✓ ${forgot.redacted} entr${forgot.redacted === 1 ? 'y' : 'ies'} redacted`))
    }
    if (!ok) {
      const bad = verify.find((v) => !v.ok)!
      const msg = `redacted ${forgot.redacted} entries, but the journal${bad.dir === '.' ? '' : ` in ${bad.dir}`} does not verify: ${bad.firstProblem}`
      if (this.jsonEnabled()) {
        process.stderr.write(`Error: ${msg}\n`)
        process.exitCode = ExitCode.verification
        return result
      }
      throw new FlytrapError(msg, { exit: 'verification', suggestions: ['run `flytrap audit verify` for the details'] })
    }
    return result
  }

  private async anchorSource(): Promise<{ client?: FlyTrapClient; provider?: Provider; fromBlock?: number; noChainReason?: string }> {
    try {
      const client = await this.client()
      const { chainId, provider } = await this.chain()
      const d = deploymentFor(chainId)
      return { client, provider, fromBlock: this.flags['from-block'] ?? (d && d.address.toLowerCase() === client.address.toLowerCase() ? d.block : 0) }
    } catch (err) {
      if (err instanceof FlytrapError && (err.exit === ExitCode.unreachable || err.exit === ExitCode.config)) return { noChainReason: err.message }
      throw err
    }
  }
}
