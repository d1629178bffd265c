/**
 * `flytrap audit report`: who did what, when and why, for a time range (optionally one topic, one client),
 * from two sources merged in time order:
 *
 * - the chain: events of THIS deployment's contract only (logs are requested by address and decoded only
 *   when they come from it): policy changes with their actor and reason, grants and revokes (actor = the
 *   topic's owner at that point, replayed from TopicAdded/TopicTransferred/TopicRemoved), joins with the
 *   amount paid, withdrawals, bans, denied-attempt summaries, sensitive-topic reports and anchors. Events
 *   only reporters can write count only when their reporter was registered at that point of the chain
 *   (replayed from ReporterAdded/ReporterRemoved); the contract refuses others, so this is a second line;
 * - the local journal (`<dataDir>/journal/*.jsonl`, read-only through journal.ts) when there is one: each
 *   decision the proxy made, marked `proven` when its range's anchor (by the journal's registered reporter)
 *   has the root the journal has now, as `audit verify` decides it.
 *
 * The time range becomes a block range by binary search on block timestamps (blocks.ts); logs are fetched
 * with eth_getLogs in chunks, with the topic and client as indexed filters where the events index them.
 * Rows have a fixed shape (absent values are null) documented in docs/audit-report.md.
 */
import { formatEther, getAddress, zeroPadValue, type Log, type LogDescription } from 'ethers'
import { argsOf, getLogsChunked, type FlyTrapClient } from '../chain/client.js'
import { ReporterHistory } from '../chain/reporters.js'
import { decodeCountries, formatExpiry, roleNames, topicId } from '../chain/codec.js'
import { usageError } from '../errors.js'
import { filterCovers, topicMatches } from '../policy/filter.js'
import { blockRange, blockTime, deploymentBlock } from './blocks.js'
import { readRecords } from './journal-files.js'
import { verifyJournal } from './verify.js'
import { CONNECT_TOPIC, OTHER_TOPIC } from './reporting.js'

export type ReportFormat = 'table' | 'json' | 'csv'

/** One row of the report. Every key is always present; null means "does not apply". */
export interface ReportRow {
  /** ISO 8601, UTC, millisecond precision: the block's time (chain) or the decision's time (journal). */
  time: string
  block: number | null
  source: 'chain' | 'journal'
  /** The contract event (TopicAdded, Granted, …) or the journal entry kind (connect, publish, …). */
  event: string
  topic: string | null
  client: string | null
  actor: string | null
  reason: string | null
  detail: string | null
  txHash: string | null
  /** Journal rows: an anchor from a registered reporter covers the entry's time. Chain rows: null. */
  proven: boolean | null
}

export interface AuditReport {
  /** Version of this JSON shape; bumped only on an incompatible change. */
  version: 1
  contract: string
  chainId: number
  /** The requested range, ISO 8601, half-open [from, to). */
  from: string
  to: string
  /** The blocks whose times fall in the range (null when none). */
  blocks: { from: number; to: number } | null
  filters: { topic: string | null; client: string | null }
  journal: { dataDir: string; entries: number; invalidLines: number } | null
  /** Events of this contract that were not counted: reporter-only events from an unregistered address. */
  ignored: { notReporter: number }
  rows: ReportRow[]
}

export interface ReportOptions {
  /** The one contract client (read-only is enough). */
  client: FlyTrapClient
  /** Unix milliseconds or Date; the range is [from, to). */
  from: number | Date
  to: number | Date
  topic?: string
  /** A client address: rows that name it (as client, actor, reporter subject, sensitive-report member). */
  clientAddress?: string
  /** The proxy's data directory; its journal is merged when present. */
  dataDir?: string
  /** The contract's deployment block (default: found by binary search on eth_getCode, else 0). */
  deployBlock?: number
  /** Blocks per eth_getLogs request. */
  chunk?: number
  onProgress?: (text: string) => void
}

// ------------------------------------------------------------------ events

const POLICY_BY_TOPIC = ['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved', 'Granted', 'Revoked', 'Joined'] as const
const REPORTER_ONLY = new Set(['Banned', 'DeniedSummary', 'SensitiveReport', 'Anchored'])
const ADMIN = ['ReporterAdded', 'ReporterRemoved', 'AdminChanged', 'RegistrationFeeChanged'] as const
const ALL = [...POLICY_BY_TOPIC, 'Withdrawn', 'Banned', 'DeniedSummary', 'SensitiveReport', 'Anchored', ...ADMIN] as const

type Parsed = LogDescription & { log: Log }

interface Internal extends ReportRow {
  ms: number
  order: number[]
  mentions: Set<string>
  topicIds: Set<string>
}

const pos = (l: Log) => [l.blockNumber, l.index] as const
const before = (a: readonly [number, number], b: readonly [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])

/** Replays TopicAdded/TopicTransferred/TopicRemoved: the owner of a topic at a point of the chain. */
class OwnerHistory {
  private readonly changes = new Map<string, { at: readonly [number, number]; owner: string | null }[]>()

  add(id: string, at: readonly [number, number], owner: string | null): void {
    const list = this.changes.get(id) ?? []
    list.push({ at, owner })
    list.sort((x, y) => (before(x.at, y.at) ? -1 : before(y.at, x.at) ? 1 : 0))
    this.changes.set(id, list)
  }

  ownerAt(id: string, at: readonly [number, number]): string | null {
    let owner: string | null = null
    for (const c of this.changes.get(id) ?? []) {
      if (!before(c.at, at)) break
      owner = c.owner
    }
    return owner
  }
}

const lower = (s: unknown) => String(s).toLowerCase()
const iso = (ms: number) => new Date(ms).toISOString()
const isoSec = (s: number | bigint) => new Date(Number(s) * 1000).toISOString().replace('.000Z', 'Z')
const eth = (wei: unknown) => `${formatEther(BigInt(wei as bigint)).replace(/\.0$/, '')} ETH`
const PADDED_ADDRESS = /^0x0{24}([0-9a-f]{40})$/

/** "seq 5..8 (4 entries)" or "no entries" for an Anchored event's arguments. */
export function anchoredSeqs(a: Record<string, unknown>): string {
  const first = Number(a.firstSeq)
  const count = Number(a.count)
  return count === 0 ? 'no entries (empty period)' : `seq ${first}..${first + count - 1} (${count} entries)`
}

function flagNames(flags: number): string {
  return [flags & 1 ? 'sensitive' : '', flags & 2 ? 'open' : ''].filter(Boolean).join(',') || 'none'
}

function countries(packed: unknown): string {
  try {
    return decodeCountries(String(packed)).join(' ') || 'anywhere'
  } catch {
    return String(packed)
  }
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!)
    }),
  )
}

// ------------------------------------------------------------------ the report

export async function buildReport(opts: ReportOptions): Promise<AuditReport> {
  const fromMs = +opts.from
  const toMs = +opts.to
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) throw usageError('--from and --to must be dates')
  if (!(toMs > fromMs)) throw usageError('--to must be after --from')
  const c = opts.client
  const provider = c.provider
  const iface = c.contract.interface
  const hash = (name: string) => iface.getEvent(name)!.topicHash
  const progress = opts.onProgress ?? (() => {})
  const topic = opts.topic ?? null
  const who = opts.clientAddress ? lower(getAddress(opts.clientAddress)) : null
  const padded = who ? zeroPadValue(who, 32).toLowerCase() : null

  const chainId = Number((await provider.getNetwork()).chainId)
  const head = await provider.getBlockNumber()
  progress('finding the contract’s deployment block')
  const deployBlock = opts.deployBlock ?? (await deploymentBlock(provider, c.address, { hi: head })) ?? 0
  progress('mapping the time range to blocks')
  const range = await blockRange(provider, Math.ceil(fromMs / 1000), Math.ceil(toMs / 1000), { lo: deployBlock, hi: head })

  // History from the deployment: reporter registrations, topic names and owners (few, admin/owner writes).
  progress('reading reporter registrations and topic owners')
  const histNames = ['ReporterAdded', 'ReporterRemoved', 'TopicAdded', 'TopicTransferred', 'TopicRemoved']
  const history = c.parseLogs(await getLogsChunked(provider, { address: c.address, topics: [histNames.map(hash)] }, deployBlock, opts.chunk, head))
  const reporters = new ReporterHistory()
  const owners = new OwnerHistory()
  const names = new Map<string, string>([
    [topicId(CONNECT_TOPIC), CONNECT_TOPIC],
    [topicId(OTHER_TOPIC), OTHER_TOPIC],
  ])
  for (const e of history) {
    const a = argsOf(e)
    if (e.name === 'ReporterAdded' || e.name === 'ReporterRemoved') reporters.add(String(a.reporter), pos(e.log), e.name === 'ReporterAdded')
    else if (e.name === 'TopicAdded') {
      names.set(lower(a.topic), String(a.name))
      owners.add(lower(a.topic), pos(e.log), lower(a.owner))
    } else if (e.name === 'TopicTransferred') owners.add(lower(a.topic), pos(e.log), lower(a.to))
    else owners.add(lower(a.topic), pos(e.log), null)
  }
  if (topic) names.set(topicId(topic).toLowerCase(), topic)

  // Which topic ids the --topic filter covers: its own, and registered names/filters that match it.
  const relevantName = (n: string) => topic !== null && (n === topic || topicMatches(n, topic) || topicMatches(topic, n) || filterCovers(topic, n))
  const topicIds = new Set<string>()
  if (topic) {
    topicIds.add(topicId(topic).toLowerCase())
    for (const [id, n] of names) if (relevantName(n)) topicIds.add(id)
  }

  // Journal first (its topic names label the chain's summaries of concrete topics).
  const journal = opts.dataDir ? await readJournal(opts.dataDir, fromMs, toMs, names) : null

  const rows: Internal[] = []
  let notReporter = 0
  const events: Parsed[] = []
  if (range) {
    progress(`reading events of blocks ${range.fromBlock}–${range.toBlock}`)
    const ids = topic ? [...topicIds] : null
    const queries: (string | string[] | null)[][] = []
    if (!topic && !who) queries.push([ALL.filter((n) => n !== 'Anchored').map(hash)])
    else {
      const policy = POLICY_BY_TOPIC.map(hash)
      if (topic && !who) queries.push([policy, ids])
      if (who) {
        // Topic-indexed events whose second indexed field is the client/owner/actor/from.
        queries.push([policy, ids, padded])
        queries.push([hash('TopicTransferred'), ids, null, padded])
        if (!topic) {
          queries.push([[hash('Withdrawn'), hash('Banned'), hash('ReporterAdded'), hash('ReporterRemoved')], padded])
          queries.push([[hash('Withdrawn'), hash('ReporterAdded'), hash('ReporterRemoved')], null, padded])
        }
      }
      // Summaries name topics and clients in their data: fetched whole, filtered below (bounded per period).
      queries.push([hash('SensitiveReport')])
      if (!who) queries.push([hash('DeniedSummary')])
    }
    for (const q of queries) events.push(...c.parseLogs(await getLogsChunked(provider, { address: c.address, topics: q }, range.fromBlock, opts.chunk, range.toBlock)))
  }
  // Anchors: those covering the range are mined after it, so read them up to the head.
  const anchorFrom = range?.fromBlock ?? (await blockRangeStart(provider, Math.ceil(fromMs / 1000), deployBlock, head))
  const anchorLogs = anchorFrom !== null ? c.parseLogs(await getLogsChunked(provider, { address: c.address, topics: [hash('Anchored')] }, anchorFrom, opts.chunk, head)) : []
  const anchors: { reporter: string; fromTime: number; toTime: number }[] = []
  const inRange = (e: Parsed) => range !== null && e.log.blockNumber >= range.fromBlock && e.log.blockNumber <= range.toBlock
  for (const e of anchorLogs) {
    const a = argsOf(e)
    if (!reporters.registeredAt(String(a.reporter), pos(e.log))) {
      if (inRange(e) && !topic && !who) notReporter++
      continue
    }
    anchors.push({ reporter: lower(a.reporter), fromTime: Number(a.fromTime), toTime: Number(a.toTime) })
    if (inRange(e) && !topic && !who) events.push(e)
  }

  // De-duplicate (queries overlap), drop reporter-only events of unregistered addresses.
  const seen = new Set<string>()
  const kept: Parsed[] = []
  for (const e of events) {
    const key = `${e.log.transactionHash}:${e.log.index}`
    if (seen.has(key)) continue
    seen.add(key)
    if (REPORTER_ONLY.has(e.name) && !reporters.registeredAt(String(argsOf(e).reporter), pos(e.log))) {
      notReporter++
      continue
    }
    kept.push(e)
  }

  progress(`reading the times of ${new Set(kept.map((e) => e.log.blockNumber)).size} blocks`)
  const blockMs = new Map<number, number>()
  await mapLimit([...new Set(kept.map((e) => e.log.blockNumber))], 8, async (n) => void blockMs.set(n, (await blockTime(provider, n)) * 1000))
  const txFrom = new Map<string, string>()
  for (const e of kept) rows.push(...(await chainRows(e, blockMs.get(e.log.blockNumber)!, names, owners, txFrom, provider)))

  if (journal) {
    // Proven: its range's anchor, by this journal's reporter (decided from the chain, never from meta.json),
    // has the root the journal has now (`audit verify`'s rule, so the two never disagree).
    progress('checking the journal against its anchors')
    const v = await verifyJournal({ dataDir: opts.dataDir!, client: c, fromBlock: deployBlock, fromMs, toMs, chunk: opts.chunk })
    // An index-mismatch range still proves its entries (its root matches); its lying index is verify's failure.
    const proven = v.anchors.periods.filter((p) => p.status === 'verified' || p.status === 'late' || p.status === 'index-mismatch')
    for (const r of journal.rows) r.proven = proven.some((p) => p.fromTime * 1000 <= r.ms && r.ms < p.toTime * 1000)
    rows.push(...journal.rows)
  }

  const matches = (r: Internal) => {
    if (topic && !([...r.topicIds].some((id) => topicIds.has(id)) || (r.topic !== null && relevantName(r.topic)))) return false
    if (who && !r.mentions.has(who)) return false
    return true
  }
  const out = rows.filter((r) => r.ms >= fromMs && r.ms < toMs && matches(r))
  out.sort((a, b) => {
    if (a.ms !== b.ms) return a.ms - b.ms
    for (let i = 0; i < Math.max(a.order.length, b.order.length); i++) {
      const d = (a.order[i] ?? 0) - (b.order[i] ?? 0)
      if (d !== 0) return d
    }
    return 0
  })

  return {
    version: 1,
    contract: getAddress(c.address),
    chainId,
    from: iso(fromMs),
    to: iso(toMs),
    blocks: range ? { from: range.fromBlock, to: range.toBlock } : null,
    filters: { topic, client: who ? getAddress(who) : null },
    journal: journal ? { dataDir: opts.dataDir!, entries: journal.rows.length, invalidLines: journal.invalid } : null,
    ignored: { notReporter },
    rows: out.map(publicRow),
  }
}

async function blockRangeStart(provider: FlyTrapClient['provider'], fromTime: number, lo: number, hi: number): Promise<number | null> {
  const r = await blockRange(provider, fromTime, Number.MAX_SAFE_INTEGER, { lo, hi })
  return r?.fromBlock ?? null
}

function publicRow(r: Internal): ReportRow {
  return { time: r.time, block: r.block, source: r.source, event: r.event, topic: r.topic, client: r.client, actor: r.actor, reason: r.reason, detail: r.detail, txHash: r.txHash, proven: r.proven }
}

function row(partial: Partial<ReportRow> & Pick<ReportRow, 'source' | 'event'>, ms: number, order: number[], mentions: (string | null | undefined)[], ids: (string | null | undefined)[]): Internal {
  return {
    time: iso(ms),
    block: null,
    topic: null,
    client: null,
    actor: null,
    reason: null,
    detail: null,
    txHash: null,
    proven: null,
    ...partial,
    ms,
    order,
    mentions: new Set(mentions.filter((m): m is string => !!m).map((m) => m.toLowerCase())),
    topicIds: new Set(ids.filter((m): m is string => !!m).map((m) => m.toLowerCase())),
  }
}

async function chainRows(e: Parsed, ms: number, names: Map<string, string>, owners: OwnerHistory, txFrom: Map<string, string>, provider: FlyTrapClient['provider']): Promise<Internal[]> {
  const a = argsOf(e)
  const l = e.log
  const base = { source: 'chain' as const, event: e.name, block: l.blockNumber, txHash: l.transactionHash }
  const order = [0, l.blockNumber, l.index]
  const id = a.topic !== undefined ? lower(a.topic) : null
  const name = id ? (names.get(id) ?? id) : null
  const addr = (v: unknown) => getAddress(String(v))
  const reason = a.reason !== undefined ? String(a.reason) : null
  const one = (p: Partial<ReportRow>, mentions: (string | null)[] = []) => [row({ ...base, topic: name, reason, ...p }, ms, order, [p.client, p.actor, ...mentions], [id])]

  switch (e.name) {
    case 'TopicAdded':
      return one({ actor: addr(a.owner), detail: `pubFee ${eth(a.pubFee)}; subFee ${eth(a.subFee)}; flags ${flagNames(Number(a.flags))}; period ${Number(a.period) || 'permanent'}${Number(a.period) ? ' s' : ''}; countries ${countries(a.countries)}` })
    case 'TopicFeesChanged':
      return one({ actor: addr(a.actor), detail: `pubFee ${eth(a.pubFee)}; subFee ${eth(a.subFee)}; period ${Number(a.period) || 'permanent'}${Number(a.period) ? ' s' : ''}` })
    case 'TopicCountriesChanged':
      return one({ actor: addr(a.actor), detail: `countries ${countries(a.countries)}` })
    case 'TopicFlagsChanged':
      return one({ actor: addr(a.actor), detail: `flags ${flagNames(Number(a.flags))}` })
    case 'TopicTransferred':
      return one({ actor: addr(a.from), detail: `to ${addr(a.to)}` }, [lower(a.to)])
    case 'TopicRemoved':
      return one({ actor: addr(a.actor) })
    case 'Granted':
    case 'Revoked': {
      // The contract lets only the topic's owner grant or revoke: the owner at this point is the actor.
      let actor = owners.ownerAt(id!, pos(l))
      if (!actor) {
        if (!txFrom.has(l.transactionHash)) txFrom.set(l.transactionHash, lower((await provider.getTransaction(l.transactionHash))?.from ?? ''))
        actor = txFrom.get(l.transactionHash) || null
      }
      const roles = roleNames(Number(a.roles)).join(',')
      const detail = e.name === 'Granted' ? `roles ${roles}; until ${formatExpiry(BigInt(a.expiresAt as bigint))}` : `roles ${roles}`
      return one({ client: addr(a.client), actor: actor ? getAddress(actor) : null, detail })
    }
    case 'Joined':
      return one({ client: addr(a.client), actor: addr(a.client), detail: `paid ${eth(a.paid)}; roles ${roleNames(Number(a.roles)).join(',')}; publish until ${formatExpiry(BigInt(a.pubExpiresAt as bigint))}; subscribe until ${formatExpiry(BigInt(a.subExpiresAt as bigint))}` })
    case 'Withdrawn':
      return one({ actor: addr(a.owner), detail: `${eth(a.amount)} to ${addr(a.to)}` }, [lower(a.to)])
    case 'Banned': {
      const subject = lower(a.subject)
      const m = PADDED_ADDRESS.exec(subject)
      const until = `until ${isoSec(a.until as bigint)}`
      return one({ topic: null, client: m ? getAddress(`0x${m[1]}`) : null, actor: addr(a.reporter), detail: m ? until : `keyed IP hash ${subject}; ${until}` })
    }
    case 'DeniedSummary': {
      const topics = (a.topics as string[]).map(lower)
      const counts = (a.counts as bigint[]).map(Number)
      const span = `[${isoSec(a.fromTime as bigint)}, ${isoSec(a.toTime as bigint)})`
      return topics.map((t, i) => row({ ...base, topic: names.get(t) ?? t, actor: addr(a.reporter), detail: `${counts[i]} refused in ${span}` }, ms, [...order, i], [], [t]))
    }
    case 'SensitiveReport': {
      const span = `[${isoSec(a.fromTime as bigint)}, ${isoSec(a.toTime as bigint)})`
      const out: Internal[] = []
      const pubs = a.publishers as string[]
      const recvs = a.receivers as string[]
      pubs.forEach((p, i) => out.push(row({ ...base, topic: name, client: addr(p), actor: addr(a.reporter), detail: `published ${Number((a.published as bigint[])[i])} in ${span}` }, ms, [...order, i], [p], [id])))
      recvs.forEach((p, i) => out.push(row({ ...base, topic: name, client: addr(p), actor: addr(a.reporter), detail: `received ${Number((a.received as bigint[])[i])} in ${span}` }, ms, [...order, pubs.length + i], [p], [id])))
      return out
    }
    case 'Anchored':
      return one({ actor: addr(a.reporter), detail: `anchor: ${anchoredSeqs(a)} in [${isoSec(a.fromTime as bigint)}, ${isoSec(a.toTime as bigint)}); root ${String(a.root)}, index ${String(a.index)}, chain ${String(a.chain)}` })
    case 'ReporterAdded':
    case 'ReporterRemoved':
      return one({ client: addr(a.reporter), actor: addr(a.actor), detail: `reporter ${addr(a.reporter)}` })
    case 'AdminChanged':
      return one({ actor: addr(a.newAdmin), detail: `admin ${addr(a.previousAdmin)} → ${addr(a.newAdmin)}` }, [lower(a.previousAdmin)])
    case 'RegistrationFeeChanged':
      return one({ actor: addr(a.actor), detail: `registration fee ${eth(a.fee)}` })
    default:
      return one({})
  }
}

// ------------------------------------------------------------------ the journal

async function readJournal(dataDir: string, fromMs: number, toMs: number, names: Map<string, string>): Promise<{ rows: Internal[]; invalid: number }> {
  const rows: Internal[] = []
  let invalid = 0
  for await (const { record } of readRecords(dataDir, { fromMs, toMs, onInvalid: () => void invalid++ })) {
    if (record.redacted) {
      rows.push(row({ source: 'journal', event: 'redacted', detail: `entry #${record.seq} erased (audit forget${record.erasure ? `, erasure record #${record.erasure}` : ''})` }, record.t, [1, record.seq], [], []))
      continue
    }
    const e = record.entry
    if (e.topic) names.set(topicId(e.topic).toLowerCase(), e.topic)
    const parts = [e.outcome, `entry #${e.seq}`]
    if (e.clientId) parts.push(`client id ${e.clientId}`)
    if (e.country) parts.push(`country ${e.country}`)
    let client = e.address ? safeAddress(e.address) : null
    if (e.subject) {
      const m = PADDED_ADDRESS.exec(e.subject.toLowerCase())
      if (m && !client) client = getAddress(`0x${m[1]}`)
      else if (!m) parts.push(`subject ${e.subject}`)
    }
    if (e.until !== undefined) parts.push(`until ${iso(e.until)}`)
    // A coalesced entry stands for several identical decisions: say how many, and since when.
    if (e.count !== undefined) parts.push(`count ${e.count} since ${iso(e.since ?? e.t)}`)
    if (e.kind === 'erasure' && e.erasure) {
      const b = e.erasure as { redacts?: unknown[]; basis?: unknown; requestedBy?: unknown; signer?: unknown }
      parts.push(`${b.redacts?.length ?? 0} entries redacted; basis ${String(b.basis)}; requested by ${String(b.requestedBy)}; signed by ${String(b.signer)}`)
    }
    rows.push(row({ source: 'journal', event: e.kind, topic: e.topic ?? null, client, reason: e.reason, detail: parts.join('; '), proven: false }, e.t, [1, e.seq], [client], [e.topic ? topicId(e.topic) : null, e.kind === 'connect' && e.outcome === 'deny' ? topicId(CONNECT_TOPIC) : null]))
  }
  return { rows, invalid }
}

function safeAddress(a: string): string {
  try {
    return getAddress(a.toLowerCase())
  } catch {
    return a
  }
}

// ------------------------------------------------------------------ output

export const CSV_COLUMNS = ['time', 'block', 'source', 'event', 'topic', 'client', 'actor', 'reason', 'detail', 'txHash', 'proven'] as const

/**
 * RFC 4180 CSV: a header row, CRLF line ends, fields with a comma, quote or line break quoted with quotes
 * doubled. Text that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a leading
 * apostrophe: topic names and reasons come from anyone who can register a topic.
 */
export function toCsv(rows: readonly ReportRow[]): string {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return ''
    let s = String(v)
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
  }
  const lines = [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((k) => cell(r[k])).join(','))]
  return lines.join('\r\n') + '\r\n'
}

/** The report as stable, pretty JSON (key order fixed by the types above). */
export function toJson(report: AuditReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

/** Parses --from/--to: ISO date or time, unix seconds, or "7d"/"12h" ago. A bare date as `end` means the end of that day. */
export function parseReportTime(value: string, opts: { end?: boolean; now?: number } = {}): number {
  const v = value.trim()
  const now = opts.now ?? Date.now()
  const rel = /^(\d+)\s*(s|m|h|d|w)$/.exec(v)
  if (rel) return now - Number(rel[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] as 's'] * 1000
  if (v === 'now') return now
  if (/^\d{9,11}$/.test(v)) return Number(v) * 1000
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const ms = Date.parse(`${v}T00:00:00Z`)
    if (Number.isNaN(ms)) throw usageError(`"${value}" is not a date`)
    return opts.end ? ms + 86_400_000 : ms
  }
  const ms = Date.parse(v)
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(ms)) throw usageError(`"${value}" is not a date`, 'use an ISO date or time (2027-01-31, 2027-01-31T12:00Z), unix seconds, "now", or an age like 7d')
  return ms
}
