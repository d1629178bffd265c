import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table, setWideTables, tableWidth, wrapText } from '../../lib/cli/output.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { deploymentFor, flytrapDir } from '../../lib/config/project-dir.js'
import { readReasons } from '../../lib/config/reasons.js'
import { FlytrapError, usageError } from '../../lib/errors.js'
import { journalDir } from '../../lib/audit/journal-files.js'
import { buildReport, parseReportTime, toCsv, toJson, type AuditReport, type ReportFormat, type ReportRow } from '../../lib/audit/report.js'
import { art30View, subjectView, toViewCsv, type Art30View, type SubjectView } from '../../lib/audit/views.js'

/** What --json prints: the report itself (docs/audit-report.md), plus where it was written. */
export type AuditReportResult = AuditReport & { out: string | null }
/** What --json prints with --subject or --format art30: that view, plus where it was written. */
export type AuditViewResult = (SubjectView | Art30View) & { out: string | null }

const short = (a: string | null) => (a && /^0x[0-9a-fA-F]{40}$/.test(a) ? `${a.slice(0, 6)}…${a.slice(-4)}` : (a ?? ''))

export default class AuditReportCommand extends ChainCommand<typeof AuditReportCommand> {
  static override description = `Who did what, when and why: on-chain events of this deployment's contract (policy changes with actor and
reason, grants and revokes, joins and payments, bans, denied-attempt summaries, sensitive-topic reports,
anchors) merged with the proxy's local journal, in time order. Each allowed access names the on-chain grant in
force (transaction, granted by, when, until, reason); a journal row is proven when its own Merkle proof checks
against the root a registered reporter anchored for its period; a refused connect whose credential did not
verify only claims its address (verified: false). Only this contract's events count, and reporter-only events
only from registered reporters. --subject: the GDPR art. 15 view of one address; --format art30: the records
of processing per topic (GDPR art. 30).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --from 2027-01-01 --to 2027-01-31',
    '<%= config.bin %> <%= command.id %> --from 7d --topic sensors/temp --format csv --out report.csv',
    '<%= config.bin %> <%= command.id %> --from 2027-01-01T00:00Z --to now --client 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --format json',
    '<%= config.bin %> <%= command.id %> --from 2027-01-01 --subject 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --format csv --out subject.csv',
    '<%= config.bin %> <%= command.id %> --from 2027-01-01 --to 2027-12-31 --format art30 --out art30.json',
  ]

  static override flags = {
    wide: Flags.boolean({ description: 'print tables at their full width instead of fitting them to the terminal (also FLYTRAP_WIDE=1)', default: false }),
    from: Flags.string({ description: 'start (inclusive): ISO date or time, unix seconds, or an age like 7d', required: true }),
    to: Flags.string({ description: 'end (exclusive; a bare date means the end of that day): ISO date or time, unix seconds, "now" or an age', default: 'now' }),
    topic: Flags.string({ description: 'only rows about this topic (a name or filter; registered filters that match it count too)' }),
    client: Flags.string({ description: 'only rows that name this client address' }),
    subject: Flags.string({ description: 'GDPR art. 15: everything held about this address (connects with IPs and client ids, accesses with their grants, grants, bans, erasures; claims by others apart), as table, json or csv', exclusive: ['client', 'topic'] }),
    format: Flags.string({ description: 'output format; art30 / art30-csv: the records-of-processing summary per topic (GDPR art. 30) as JSON / CSV', options: ['table', 'json', 'csv', 'art30', 'art30-csv'], default: 'table' }),
    out: Flags.string({ description: 'write the report to this file instead of standard output' }),
    'data-dir': Flags.string({ description: "the proxy's data directory, whose journal (<data-dir>/journal) is merged [default: .flytrap/proxy when it has one]", env: 'FLYTRAP_DATA_DIR' }),
    'from-block': Flags.integer({ description: "the contract's deployment block [default: the recorded deployment, else found on chain]", min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditReportResult | AuditViewResult> {
    const f = this.flags
    setWideTables(f.wide)
    const fromMs = parseReportTime(f.from)
    const toMs = parseReportTime(f.to, { end: true })
    if (!(toMs > fromMs)) throw usageError(`--to (${new Date(toMs).toISOString()}) must be after --from (${new Date(fromMs).toISOString()})`)
    const clientAddress = f.client ? parseAddress(f.client, '--client') : undefined
    const subject = f.subject ? parseAddress(f.subject, '--subject') : undefined
    const view = f.format.startsWith('art30') ? 'art30' : subject ? 'subject' : null
    if (subject && view === 'art30') throw usageError('--subject and --format art30 are two different views: give one')
    const format = (f.format === 'art30' ? 'json' : f.format === 'art30-csv' ? 'csv' : f.format) as ReportFormat

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
      buildReport({ client, from: fromMs, to: toMs, topic: f.topic, clientAddress: subject ?? clientAddress, dataDir, deployBlock, reasons: readReasons(), onProgress: (text) => (s.text = `Building the audit report: ${text}`) }),
    )
    if (view) {
      const v = view === 'art30' ? art30View(report, dataDir) : await subjectView(report, subject!, dataDir)
      const text = format === 'csv' ? toViewCsv(v) : format === 'json' ? JSON.stringify(v, null, 2) + '\n' : this.renderSubject(v as SubjectView)
      const out = this.write(f.out, text, format, view === 'art30' ? `${(v as Art30View).topics.length} topics` : 'the data-subject view')
      return { ...v, out }
    }

    const text = format === 'json' ? toJson(report) : format === 'csv' ? toCsv(report.rows) : this.render(report)
    const out = this.write(f.out, text, format, `${report.rows.length} rows`)
    return { ...report, out }
  }

  private write(file: string | undefined, text: string, format: ReportFormat, what: string): string | null {
    if (file) {
      const out = resolve(file)
      mkdirSync(dirname(out), { recursive: true })
      writeFileSync(out, format === 'table' ? `${text}\n` : text)
      this.say(`${what} written to ${out}`)
      return out
    }
    if (!this.jsonEnabled()) process.stdout.write(format === 'table' ? `${text}\n` : text)
    return null
  }

  private renderSubject(v: SubjectView): string {
    const head = [`data subject ${v.subject}: everything held in ${v.from} → ${v.to} (contract ${v.contract} on chain ${v.chainId})`, v.journal ? `journal ${v.journal.dataDir}` : 'no local journal merged (chain only)']
    const when = (t: string) => t.replace('.000Z', 'Z')
    const parts = [
      ...head,
      `connects (${v.connects.length})`,
      table(['time', 'outcome', 'reason', 'client id', 'IP', 'country', 'proven'], v.connects.map((c) => [when(c.time), c.outcome, c.reason, c.clientId ?? '', c.ip ?? '', c.country ?? '', c.proven ? 'yes' : 'no'])),
      `accesses (${v.accesses.length})`,
      table(['time', 'kind', 'topic', 'outcome', 'count', 'grant (tx, by, reason)', 'proven'], v.accesses.map((a) => [when(a.time), a.kind, a.topic ?? '', a.outcome, a.count, a.grant ? `${a.grant.kind} ${short(a.grant.tx)} by ${short(a.grant.by)}: ${a.grant.reason ?? ''}` : '', a.proven ? 'yes' : 'no'])),
      `on chain (${v.chain.length}) and grants in force at the start (${v.grantsAtFrom.length})`,
      table(['time', 'event', 'topic', 'actor', 'reason', 'detail'], [...v.grantsAtFrom.map((g) => [when(g.at), `${g.event} (in force)`, g.rule, short(g.by), g.reason ?? '', `${g.role} until ${g.until ?? 'revoked'}`]), ...v.chain.map((r) => [when(r.time), r.event, r.topic ?? '', short(r.actor), r.reason ?? '', r.detail ?? ''])]),
      `bans (${v.bans.length}); erasure records in range (${v.erasures.length}); erased entries (${v.redacted})`,
      `connects by others claiming this address with a credential that did not verify (${v.claimsByOthers.length}): not this subject's activity`,
    ]
    if (v.claimsByOthers.length) parts.push(table(['time', 'reason', 'client id', 'IP', 'country'], v.claimsByOthers.map((c) => [when(c.time), c.reason, c.clientId ?? '', c.ip ?? '', c.country ?? ''])))
    return parts.join('\n')
  }

  private render(r: AuditReport): string {
    const head = [
      `contract ${r.contract} on chain ${r.chainId}; ${r.from} → ${r.to}` + (r.blocks ? ` (blocks ${r.blocks.from}–${r.blocks.to})` : ' (no blocks in range)'),
      r.journal ? `journal ${r.journal.dataDir}: ${r.journal.entries} entries` : 'no local journal merged (chain only)',
    ]
    if (r.ignored.notReporter) head.push(`${r.ignored.notReporter} reporter-only events from unregistered addresses ignored`)
    if (r.rows.length === 0) return [...head, 'no rows'].join('\n')
    const who = (x: ReportRow) => (x.verified === false ? `claims ${short(x.claimed)} (unverified)` : short(x.client))
    const why = (x: ReportRow) => (x.grant ? `${x.grant.kind === 'owner' ? 'owner' : `${x.grant.kind} ${short(x.grant.tx)} by ${short(x.grant.by)}`}${x.grant.reason ? `: ${x.grant.reason}` : ''}${x.grant.until ? ` until ${x.grant.until}` : ''}` : '')
    const cells = (x: ReportRow) => [x.time.replace('.000Z', 'Z'), x.source, x.event, x.topic ?? '', who(x), short(x.actor), x.reason ?? '', why(x), x.detail ?? '', x.proven === null ? '' : x.proven ? 'yes' : 'no']
    if (r.grantsAtFrom.length) head.push(`${r.grantsAtFrom.length} grants made before ${r.from} still in force at it (--format json: grantsAtFrom)`)
    // The head lines wrap at the terminal's width too (whole words), like the table under them.
    const w = tableWidth()
    const lines = head.flatMap((l) => (Number.isFinite(w) ? wrapText(l, w) : [l]))
    return [...lines, table(['time', 'source', 'event', 'topic', 'client', 'actor', 'reason', 'grant', 'detail', 'proven'], r.rows.map(cells))].join('\n')
  }
}
