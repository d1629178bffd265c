import { Flags } from '@oclif/core'
import { join } from 'node:path'
import { ChainCommand } from '../../lib/cli/base.js'
import { chalk, record, table, setWideTables } from '../../lib/cli/output.js'
import type { FlyTrapClient } from '../../lib/chain/client.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { parseDate, parseDuration } from '../../lib/parse/units.js'
import { deploymentFor, flytrapDir } from '../../lib/config/project-dir.js'
import { ExitCode, FlytrapError } from '../../lib/errors.js'
import { verifyEntry, verifyJournal, type EntryCheck, type PeriodStatus, type VerifyReport } from '../../lib/audit/verify.js'

export type AuditVerifyResult = (VerifyReport & { mode: 'journal' }) | (EntryCheck & { mode: 'entry' })

const iso = (sec: number) => new Date(sec * 1000).toISOString().replace('.000Z', 'Z')

const STATUS: Record<PeriodStatus, (checked: boolean) => string> = {
  verified: () => chalk.green('verified'),
  late: () => chalk.red('LATE'),
  mismatch: () => chalk.red('MISMATCH'),
  conflict: () => chalk.red('CONFLICT'),
  'index-mismatch': () => chalk.red('INDEX MISMATCH'),
  unanchored: (checked) => (checked ? chalk.red('NOT ANCHORED') : 'not checked'),
  pending: () => 'not due yet',
}

export default class AuditVerify extends ChainCommand<typeof AuditVerify> {
  static override summary = "Check the audit journal's hash chain and its anchored Merkle roots; prove one entry"

  static override description = `Check the proxy's audit journal: every hash-chain link, and every period's Merkle root, scope index, seq
range and hash-chain value against the anchor on chain (the scope index also against journal/index/). Only anchors from addresses that were registered reporters at
that block count (the contract's own history decides, never a file in the data directory). Every closed period
must be anchored by its deadline (default: two periods after it ended); a late anchor is named with its delay.
Tampering is located by segment file, line and seq; exit 7 on any failure. Without a reachable chain the hash
chain is still checked and the output says anchors were not. With --entry, prints and checks the inclusion
proof of one entry.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --data-dir /var/lib/flytrap --from 2027-01-01 --to 2027-02-01',
    '<%= config.bin %> <%= command.id %> --entry 1234 --json',
    '<%= config.bin %> <%= command.id %> --deadline 2h --reporter 0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
  ]

  static override flags = {
    wide: Flags.boolean({ description: 'print tables at their full width instead of fitting them to the terminal (also FLYTRAP_WIDE=1)', default: false }),
    'data-dir': Flags.string({ description: "the proxy's data directory (the journal is in <data-dir>/journal) [default: .flytrap/proxy]", env: 'FLYTRAP_DATA_DIR' }),
    from: Flags.string({ description: 'only periods from this time: ISO date/time, unix seconds or an age like 7d' }),
    to: Flags.string({ description: 'only periods before this time: ISO date/time, unix seconds, now or an age' }),
    entry: Flags.integer({ description: 'print and check the inclusion proof of the entry with this seq', min: 1 }),
    reporter: Flags.string({ description: 'only anchors sent by this reporter address (it must have been registered when it anchored) [default: the registered reporter(s) whose anchors match this journal]' }),
    deadline: Flags.string({ description: 'an anchor is due this long after its period ends, e.g. 90s, 1h [default: two periods, at least 5 minutes]' }),
    'from-block': Flags.integer({ description: 'block to read anchors from [default: the recorded deployment block, else 0]', min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditVerifyResult> {
    setWideTables(this.flags.wide)
    const dataDir = this.flags['data-dir'] ?? join(flytrapDir(), 'proxy')
    const fromMs = this.flags.from ? parseDate(this.flags.from, '--from', { relative: 'past' }) : undefined
    const toMs = this.flags.to ? parseDate(this.flags.to, '--to', { relative: 'past', end: true }) : undefined
    if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) throw new FlytrapError('--from must be before --to', { exit: 'usage' })
    const reporter = this.flags.reporter ? parseAddress(this.flags.reporter, 'reporter') : undefined
    const deadlineMs = this.flags.deadline === undefined ? undefined : parseDuration(this.flags.deadline, '--deadline', { min: 0, max: 100 * 365 * 86_400_000, bare: 'ms' })
    const chain = await this.anchorSource()

    if (this.flags.entry !== undefined) {
      const check = await this.spin('Checking the entry', () => verifyEntry({ dataDir, seq: this.flags.entry!, reporter, ...chain }))
      this.showEntry(check)
      return this.finish({ mode: 'entry', ...check }, check.ok ? null : check.message)
    }

    const report = await this.spin('Verifying the journal', () => verifyJournal({ dataDir, fromMs, toMs, reporter, deadlineMs, ...chain }))
    this.showReport(report)
    return this.finish({ mode: 'journal', ...report }, report.ok ? null : report.firstProblem)
  }

  /** The contract client for anchors, or why there is none (verification then covers the hash chain only). */
  private async anchorSource(): Promise<{ client?: FlyTrapClient; fromBlock?: number; noChainReason?: string }> {
    try {
      const client = await this.client()
      const { chainId } = await this.chain()
      const d = deploymentFor(chainId)
      const fromBlock = this.flags['from-block'] ?? (d && d.address.toLowerCase() === client.address.toLowerCase() ? d.block : 0)
      return { client, fromBlock }
    } catch (err) {
      if (err instanceof FlytrapError && (err.exit === ExitCode.unreachable || err.exit === ExitCode.config)) return { noChainReason: err.message }
      throw err
    }
  }

  /** Failure is exit 7 naming the place; with --json the full result is still printed on stdout. */
  private finish(result: AuditVerifyResult, failure: string | null): AuditVerifyResult {
    if (failure === null) return result
    if (this.jsonEnabled()) {
      process.stderr.write(`Error: ${failure}\n`)
      process.exitCode = ExitCode.verification
      return result
    }
    throw new FlytrapError(failure, { exit: 'verification', code: 'JOURNAL_TAMPERED', suggestions: ['the journal no longer matches what was recorded or anchored, or part of it was never anchored in time: keep a copy as evidence', 'a late or missing anchor the operator can explain: judge it, then --deadline <duration> accepts later anchors'] })
  }

  private showReport(r: VerifyReport): void {
    if (this.jsonEnabled()) return
    const j = r.journal
    this.log(
      record([
        ['journal', join(r.dataDir, 'journal')],
        ['entries', j.entries === 0 ? 'none' : `${j.entries} (seq ${j.firstSeq}..${j.lastSeq}) in ${j.segments} segment(s), ${j.redacted} redacted`],
        ['time', j.firstTime ? `${j.firstTime} .. ${j.lastTime}` : '-'],
        ['hash chain', r.chain.ok ? chalk.green('intact') : chalk.red(`${r.chain.problemCount} problem(s)`)],
        [
          'anchors',
          r.anchors.checked
            ? `${r.anchors.verified} verified, ${r.anchors.mismatched} mismatched, ${r.anchors.indexMismatched} with a wrong scope index, ${r.anchors.late} late, ${r.anchors.unanchored} missing past the deadline, ${r.anchors.pending} not due yet (contract ${r.anchors.contract}${r.anchors.reporters.length ? `, reporter ${r.anchors.reporters.join(', ')}` : ''}; deadline ${Math.round(r.anchors.deadlineMs / 1000)} s)`
            : chalk.yellow(r.anchors.reason ?? 'not checked'),
        ],
      ]),
    )
    if (r.anchors.periods.length > 0) {
      this.log(
        table(
          ['period (UTC)', 'entries', 'seq', 'status', 'anchor pins', 'delay', 'anchor'],
          r.anchors.periods.map((p) => {
            const a = p.anchors[0]
            return [
              `${iso(p.fromTime)} .. ${iso(p.toTime)}`,
              p.local.count,
              p.local.firstSeq === null ? '-' : `${p.local.firstSeq}..${p.local.lastSeq}`,
              STATUS[p.status](r.anchors.checked),
              a ? `${a.count === 0 ? 'empty' : `${a.firstSeq}..${a.lastSeq}`}, chain ${a.chain.slice(0, 10)}…` : '-',
              p.delaySec === undefined ? '-' : `${p.delaySec} s`,
              a ? `${a.txHash.slice(0, 12)}… (block ${a.blockNumber})` : '-',
            ]
          }),
        ),
      )
    }
    for (const p of r.chain.problems) this.log(chalk.red(`✗ ${p.message}`))
    if (r.chain.problemCount > r.chain.problems.length) this.log(chalk.red(`✗ … and ${r.chain.problemCount - r.chain.problems.length} more`))
    for (const p of r.anchors.periods.filter((x) => x.message && r.anchors.checked)) this.log(chalk.red(`✗ period ${iso(p.fromTime)} .. ${iso(p.toTime)}: ${p.message}`))
    for (const w of r.warnings) this.log(chalk.yellow(`! ${w}`))
    if (r.ok) this.log(chalk.green(r.anchors.checked ? '✓ journal intact and consistent with the chain' : '✓ hash chain intact (anchors were not checked)'))
  }

  private showEntry(c: EntryCheck): void {
    if (this.jsonEnabled()) return
    const rows: [string, string | number][] = [
      ['entry', `seq ${c.seq} (${c.file}:${c.line})`],
      ...(c.redacted
        ? ([['content', 'redacted (audit forget)']] as [string, string][])
        : Object.entries(c.entry ?? {})
            .filter(([k]) => k !== 'seq')
            .map(([k, v]) => [k, k === 't' || k === 'until' ? new Date(Number(v)).toISOString() : String(v)] as [string, string])),
      ['leaf', c.leaf],
      ['period', `${iso(c.fromTime)} .. ${iso(c.toTime)}`],
      ['position', `${c.proof.index + 1} of ${c.proof.count}`],
      ['proof', c.proof.siblings.length ? c.proof.siblings.join('\n') : '(none: the only entry)'],
      ['root (recomputed)', c.root],
      ['anchored root', c.anchor ? `${c.anchor.root}\ntx ${c.anchor.txHash} (block ${c.anchor.blockNumber}) by ${c.anchor.reporter}` : c.anchorsChecked ? 'not anchored yet' : (c.reason ?? 'not checked')],
    ]
    this.log(record(rows))
    this.log(c.ok ? chalk.green(`✓ ${c.message}`) : chalk.red(`✗ ${c.message}`))
  }
}
