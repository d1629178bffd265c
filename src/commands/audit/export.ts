import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { chalk, record } from '../../lib/cli/output.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { deploymentFor, flytrapDir } from '../../lib/config/project-dir.js'
import { FlytrapError, usageError } from '../../lib/errors.js'
import { validateTopicFilter } from '../../lib/policy/filter.js'
import { deploymentBlock } from '../../lib/audit/blocks.js'
import { journalDir } from '../../lib/audit/journal-files.js'
import { parseReportTime } from '../../lib/audit/report.js'
import { exportBundle } from '../../lib/audit/evidence/export.js'
import { canonicalJson } from '../../lib/audit/entry.js'
import { parseReasons, reasonsPath } from '../../lib/config/reasons.js'

export interface AuditExportResult {
  out: string
  format: string
  version: number
  signer: string
  contract: string
  chainId: number
  scope: { from: string; to: string; topic: string | null; client: string | null }
  periods: number
  entries: number
  redacted: number
  openings: number
  policyEvents: number
  summaries: number
  members: number
  reasons: number
  grants: number
  bytes: number
  notes: string[]
}

const iso = (ms: number) => new Date(ms).toISOString()

export default class AuditExport extends ChainCommand<typeof AuditExport> {
  static override summary = 'Export a signed evidence bundle (one JSON file) that anyone can check with `audit check` and a chain node'

  static override description = `Builds a self-contained, versioned evidence bundle for a time range, optionally for one topic or one
client: the deployment and its reporter history, every journal entry in scope with its content and salt (redacted
ones with their erasure records), the Merkle path of each to its period's anchored root, the anchors (tx, block,
block hash, log index), the scope-index openings that prove a filtered bundle complete, the policy events that
explain each access (and, per access, the one that allowed it), the period summaries with the member records of
committed sensitive reports the scope discloses, and the openings of committed reasons (--reasons); signed by the reporter key (--key: the key the proxy anchors with).
The range is rounded out to whole anchoring periods. Format and check recipe: docs/evidence.md.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --from 2027-01-01 --to 2027-02-01 --topic ward/vitals --key $REPORTER_KEY --out vitals.evidence.json',
    '<%= config.bin %> <%= command.id %> --from 24h --client 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --out client.json --json',
  ]

  static override flags = {
    from: Flags.string({ description: 'start (inclusive): ISO date or time, unix seconds, or an age like 7d', required: true }),
    to: Flags.string({ description: 'end (exclusive): ISO date or time, unix seconds, "now" or an age', default: 'now' }),
    topic: Flags.string({ description: 'only entries about this topic (a name or filter): the bundle proves no such entry was left out' }),
    client: Flags.string({ description: 'only entries of this client address: the bundle proves no such entry was left out' }),
    out: Flags.string({ description: 'file to write the bundle to', required: true }),
    'data-dir': Flags.string({ description: "the proxy's data directory (the journal is in <data-dir>/journal) [default: .flytrap/proxy]", env: 'FLYTRAP_DATA_DIR' }),
    reasons: Flags.string({ description: 'openings of committed (--reason-private) reasons, in reasons.jsonl form [default: the config directory\'s reasons.jsonl when there is one]' }),
    'from-block': Flags.integer({ description: "the contract's deployment block [default: the recorded deployment, else found on chain]", min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<AuditExportResult> {
    const f = this.flags
    const fromMs = parseReportTime(f.from)
    const toMs = parseReportTime(f.to, { end: true })
    if (!(toMs > fromMs)) throw usageError(`--to (${iso(toMs)}) must be after --from (${iso(fromMs)})`)
    if (f.topic !== undefined && f.client !== undefined) throw usageError('a bundle is for one topic or one client: pass --topic or --client, not both')
    if (f.topic !== undefined) {
      const why = validateTopicFilter(f.topic)
      if (why !== null || f.topic.startsWith('$share/')) throw usageError(`--topic "${f.topic}": ${why ?? 'a shared subscription is not a topic'}`)
    }
    const clientAddress = f.client ? parseAddress(f.client, '--client') : undefined
    const dataDir = resolve(f['data-dir'] ?? join(flytrapDir(), 'proxy'))
    if (!existsSync(journalDir(dataDir))) throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ["pass the proxy's --data-dir"] })
    const out = resolve(f.out)
    let reasonsText = ''
    const reasonsFile = f.reasons !== undefined ? resolve(f.reasons) : reasonsPath()
    try {
      reasonsText = readFileSync(reasonsFile, 'utf8')
    } catch (err) {
      if (f.reasons !== undefined) throw usageError(`--reasons ${f.reasons}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
    }
    const reasons = parseReasons(reasonsText)
    const signer = await this.keyOnly()
    const client = await this.client()
    const { chainId } = await this.chain()
    const recorded = deploymentFor(chainId)
    const deployBlock =
      f['from-block'] ?? (recorded && recorded.address.toLowerCase() === client.address.toLowerCase() ? recorded.block : ((await deploymentBlock(client.provider, client.address)) ?? 0))

    const { bundle, notes } = await this.spin('Building the evidence bundle', () => exportBundle({ client, chainId, deployBlock, dataDir, fromMs, toMs, topic: f.topic, clientAddress, signer, reasons }))
    const text = `${canonicalJson(bundle)}\n`
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, text)
    const entries = bundle.periods.reduce((n, p) => n + p.entries.length, 0)
    const redacted = bundle.periods.reduce((n, p) => n + p.entries.filter((e) => 'redacted' in e).length, 0)
    const result: AuditExportResult = {
      out,
      format: bundle.format,
      version: bundle.version,
      signer: bundle.signer,
      contract: bundle.deployment.contract,
      chainId,
      scope: { from: iso(bundle.scope.fromMs), to: iso(bundle.scope.toMs), topic: bundle.scope.topic, client: bundle.scope.client },
      periods: bundle.periods.length,
      entries,
      redacted,
      openings: bundle.periods.reduce((n, p) => n + p.openings.length, 0),
      policyEvents: bundle.policy.length,
      summaries: bundle.summaries.length,
      members: bundle.members.length,
      reasons: bundle.reasons.length,
      grants: bundle.grants.length,
      bytes: Buffer.byteLength(text),
      notes,
    }
    if (!this.jsonEnabled()) {
      this.log(
        record([
          ['bundle', `${out} (${bundle.format} v${bundle.version}, ${result.bytes} bytes)`],
          ['scope', `${result.scope.from} .. ${result.scope.to}${bundle.scope.topic ? `, topic ${bundle.scope.topic}` : ''}${bundle.scope.client ? `, client ${bundle.scope.client}` : ''}`],
          ['periods', result.periods],
          ['entries', `${entries} disclosed (${redacted} redacted)`],
          ['chain', `${result.policyEvents} policy events, ${result.summaries} summaries, contract ${result.contract} on chain ${chainId}`],
          ['disclosed', `${result.members} member records, ${result.reasons} reason openings, ${result.grants} grants`],
          ['signed by', bundle.signer],
        ]),
      )
      for (const n of notes) this.log(chalk.yellow(`! ${n}`))
      this.log(chalk.green(`✓ written; check it with \`flytrap audit check ${f.out} --rpc <url>\``))
    }
    return result
  }
}
