import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { deploymentFor, flytrapDir } from '../../lib/config/store.js'
import { readReasons } from '../../lib/config/reasons.js'
import { FlytrapError, usageError } from '../../lib/errors.js'
import { journalDir } from '../../lib/audit/journal-files.js'
import { buildReport, parseReportTime, toCsv, toJson, type AuditReport, type ReportFormat, type ReportRow } from '../../lib/audit/report.js'

/** What --json prints: the report itself (docs/audit-report.md), plus where it was written. */
export type AuditReportResult = AuditReport & { out: string | null }

const short = (a: string | null) => (a && /^0x[0-9a-fA-F]{40}$/.test(a) ? `${a.slice(0, 6)}…${a.slice(-4)}` : (a ?? ''))

export default class AuditReportCommand extends ChainCommand<typeof AuditReportCommand> {
  static override description = `Who did what, when and why: on-chain events of this deployment's contract (policy changes with actor and
reason, grants and revokes, joins and payments, bans, denied-attempt summaries, sensitive-topic reports,
anchors) merged with the proxy's local journal, in time order. Journal rows are marked proven when an anchor
of a registered reporter covers them (\`audit verify\` checks the roots). Only this contract's events count,
and reporter-only events only from registered reporters.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --from 2027-01-01 --to 2027-01-31',
    '<%= config.bin %> <%= command.id %> --from 7d --topic sensors/temp --format csv --out report.csv',
    '<%= config.bin %> <%= command.id %> --from 2027-01-01T00:00Z --to now --client 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --format json',
  ]

  static override flags = {
    from: Flags.string({ description: 'start (inclusive): ISO date or time, unix seconds, or an age like 7d', required: true }),
    to: Flags.string({ description: 'end (exclusive; a bare date means the end of that day): ISO date or time, unix seconds, "now" or an age', default: 'now' }),
    topic: Flags.string({ description: 'only rows about this topic (a name or filter; registered filters that match it count too)' }),
    client: Flags.string({ description: 'only rows that name this client address' }),
    format: Flags.string({ description: 'output format', options: ['table', 'json', 'csv'], default: 'table' }),
    out: Flags.string({ description: 'write the report to this file instead of standard output' }),
    'data-dir': Flags.string({ description: "the proxy's data directory, whose journal (<data-dir>/journal) is merged [default: .flytrap/proxy when it has one]", env: 'FLYTRAP_DATA_DIR' }),
    'from-block': Flags.integer({ description: "the contract's deployment block [default: the recorded deployment, else found on chain]", min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditReportResult> {
    const f = this.flags
    const fromMs = parseReportTime(f.from)
    const toMs = parseReportTime(f.to, { end: true })
    if (!(toMs > fromMs)) throw usageError(`--to (${new Date(toMs).toISOString()}) must be after --from (${new Date(fromMs).toISOString()})`)
    const clientAddress = f.client ? parseAddress(f.client, '--client') : undefined
    const format = f.format as ReportFormat

    let dataDir: string | undefined
    if (f['data-dir']) {
      dataDir = resolve(f['data-dir'])
      if (!existsSync(journalDir(dataDir))) {
        throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ["pass the proxy's --data-dir, or leave it out for a chain-only report"] })
      }
    } else {
      const def = join(flytrapDir(), 'proxy')
      if (existsSync(journalDir(def))) dataDir = def
    }

    const client = await this.client()
    const { chainId } = await this.chain()
    const recorded = deploymentFor(chainId)
    const deployBlock = f['from-block'] ?? (recorded && recorded.address.toLowerCase() === client.address.toLowerCase() ? recorded.block : undefined)

    const report = await this.spin('Building the audit report', (s) =>
      buildReport({ client, from: fromMs, to: toMs, topic: f.topic, clientAddress, dataDir, deployBlock, reasons: readReasons(), onProgress: (text) => (s.text = `Building the audit report: ${text}`) }),
    )

    const text = format === 'json' ? toJson(report) : format === 'csv' ? toCsv(report.rows) : this.render(report)
    let out: string | null = null
    if (f.out) {
      out = resolve(f.out)
      mkdirSync(dirname(out), { recursive: true })
      writeFileSync(out, format === 'table' ? `${text}\n` : text)
      this.say(`${report.rows.length} rows written to ${out}`)
    } else if (!this.jsonEnabled()) {
      process.stdout.write(format === 'table' ? `${text}\n` : text)
    }
    return { ...report, out }
  }

  private render(r: AuditReport): string {
    const head = [
      `contract ${r.contract} on chain ${r.chainId}; ${r.from} → ${r.to}` + (r.blocks ? ` (blocks ${r.blocks.from}–${r.blocks.to})` : ' (no blocks in range)'),
      r.journal ? `journal ${r.journal.dataDir}: ${r.journal.entries} entries` : 'no local journal merged (chain only)',
    ]
    if (r.ignored.notReporter) head.push(`${r.ignored.notReporter} reporter-only events from unregistered addresses ignored`)
    if (r.rows.length === 0) return [...head, 'no rows'].join('\n')
    const cells = (x: ReportRow) => [x.time.replace('.000Z', 'Z'), x.source, x.event, x.topic ?? '', short(x.client), short(x.actor), x.reason ?? '', x.detail ?? '', x.proven === null ? '' : x.proven ? 'yes' : 'no']
    return [...head, table(['time', 'source', 'event', 'topic', 'client', 'actor', 'reason', 'detail', 'proven'], r.rows.map(cells))].join('\n')
  }
}
