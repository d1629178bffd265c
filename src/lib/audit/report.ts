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
 *   decision the proxy made, marked `proven` when its own Merkle proof leads from its content to the root
 *   anchored for its range by the journal's registered reporter (proofs.ts), with the grant that allowed it
 *   (grants.ts, replayed from the policy events since the deployment), and `verified: false` for refused
 *   connects whose credential did not verify (the address is only claimed: kept apart from that address's
 *   own activity).
 *
 * Period summaries (DeniedSummary, SensitiveReport) are selected by the interval they cover, not by the block
 * they were mined in (they are mined after their period ends).
 *
 * The time range becomes a block range by binary search on block timestamps (blocks.ts); logs are fetched
 * with eth_getLogs in chunks, with the topic and client as indexed filters where the events index them.
 * Rows have a fixed shape (absent values are null) documented in docs/audit-report.md.
 */
import { getAddress, zeroPadValue } from 'ethers'
import { getLogsChunked, type FlyTrapClient } from '../chain/client.js'
import { bannedAddress, decodeLogs, deniedCountText, eventText, eventTopics, isoFromMs, positionOf, sensitiveMemberText, type ChainEvent, type EventName } from '../chain/events.js'
import { ReporterHistory } from '../chain/reporters.js'
import { topicId } from '../chain/codec.js'
import { parseDate } from '../parse/units.js'
import { usageError } from '../errors.js'
import { filterCovers, topicMatches } from '../policy/filter.js'
import { blockRange, blockTime, deploymentBlock } from './blocks.js'
import { parseShared } from '../policy/filter.js'
import type { JournalEntry } from './entry.js'
import { GrantHistory, POLICY_EVENTS, type GrantCause, type PolicyLog } from './grants.js'
import { rangeTally, readRecords } from './journal-files.js'
import { proveEntries, type AnchorLike } from './proofs.js'
import { membersRecords } from './sensitive-members.js'
import { displayReason, type ReasonDisclosure } from '../chain/reasons.js'
import { verifyJournal } from './verify.js'
import { CONNECT_TOPIC, OTHER_TOPIC } from './period-reporter.js'
import type { AuditReport, ReportRow, RowGrant } from './report-rows.js'

export type ReportFormat = 'table' | 'json' | 'csv'

export type { AuditReport, GrantAtFrom, ReportRow, RowGrant } from './report-rows.js'

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
  /** Disclosed private reasons (the owner's reasons.jsonl), by commitment: shown when they open an on-chain commitment. */
  reasons?: ReadonlyMap<string, ReasonDisclosure>
}

// ------------------------------------------------------------------ events

const POLICY_BY_TOPIC = ['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved', 'Granted', 'Revoked', 'Joined'] as const satisfies readonly EventName[]
const ADMIN = ['ReporterAdded', 'ReporterRemoved', 'AdminChanged', 'RegistrationFeeChanged'] as const satisfies readonly EventName[]
const ALL = [...POLICY_BY_TOPIC, 'Withdrawn', 'Banned', 'DeniedSummary', 'SensitiveReport', 'SensitiveReportClear', 'Anchored', ...ADMIN] as const satisfies readonly EventName[]

interface Internal extends ReportRow {
  ms: number
  order: number[]
  mentions: Set<string>
  topicIds: Set<string>
  /** Selected whatever its time (a summary whose interval overlaps the range). */
  always?: boolean
  /** Journal rows: the entry. */
  entry?: JournalEntry
}

/** Refusal reasons of a CONNECT whose credential did not verify (auth/result.ts outcomes, and the AUTH method check): the address is only claimed. */
const UNVERIFIED_REASONS = new Set(['missing', 'malformed', 'bad-signature', 'expired', 'too-long', 'wrong-deployment', 'wrong-client-id', 'bad-auth-method'])

/** True when a journal entry's address is only claimed (journals before the `unverified` field: by its reason). */
export function claimOnly(e: Pick<JournalEntry, 'kind' | 'outcome' | 'reason' | 'unverified'>): boolean {
  return e.unverified === true || (e.kind === 'connect' && e.outcome === 'deny' && UNVERIFIED_REASONS.has(e.reason))
}

const ACCESS = new Set(['publish', 'subscribe', 'deliver', 'will'])

/** The grant behind an allowed access entry, from the replayed policy; null when it is not one or nothing on chain allowed it. */
export function grantFor(grants: GrantHistory, e: Pick<JournalEntry, 'kind' | 'outcome' | 'address' | 'topic' | 't'>): RowGrant | null {
  if (e.outcome !== 'allow' || !ACCESS.has(e.kind) || !e.address || !e.topic) return null
  const topic = e.kind === 'subscribe' ? parseShared(e.topic)?.filter : e.topic
  if (!topic) return null
  const cause = grants.grantInForce(topic, e.address, e.kind === 'publish' || e.kind === 'will' ? 'publish' : 'subscribe', e.t)
  return cause ? rowGrant(cause) : null
}

function rowGrant(c: GrantCause): RowGrant {
  return { kind: c.kind, rule: c.rule, event: c.event, tx: c.tx, block: c.block, logIndex: c.logIndex, by: c.by ? getAddress(c.by) : null, at: c.at, until: c.until, reason: c.reason }
}

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

const lower = (s: string) => s.toLowerCase()
const iso = isoFromMs

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
  const hash = (name: EventName) => eventTopics([name])[0]!
  const read = async (topics: (string | string[] | null)[], from: number, to: number) => decodeLogs(c.address, await getLogsChunked(provider, { address: c.address, topics }, from, opts.chunk, to))
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
  // With every other policy event: the grant history that says why each access was allowed (grants.ts).
  const histNames = ['ReporterAdded', 'ReporterRemoved', ...POLICY_EVENTS] as EventName[]
  const history = await read([eventTopics(histNames)], deployBlock, head)
  const reporters = new ReporterHistory()
  const owners = new OwnerHistory()
  const names = new Map<string, string>([
    [topicId(CONNECT_TOPIC), CONNECT_TOPIC],
    [topicId(OTHER_TOPIC), OTHER_TOPIC],
  ])
  reporters.addEvents(history)
  for (const e of history) {
    if (e.name === 'TopicAdded') {
      names.set(e.args.topic, e.args.name)
      owners.add(e.args.topic, positionOf(e), lower(e.args.owner))
    } else if (e.name === 'TopicTransferred') owners.add(e.args.topic, positionOf(e), lower(e.args.to))
    else if (e.name === 'TopicRemoved') owners.add(e.args.topic, positionOf(e), null)
  }
  const policyLogs = history.filter((e) => POLICY_EVENTS.includes(e.name))
  progress(`reading the times of ${new Set(policyLogs.map((e) => e.block)).size} policy blocks`)
  const blockMs = new Map<number, number>()
  await mapLimit([...new Set(policyLogs.map((e) => e.block))], 8, async (n) => void blockMs.set(n, (await blockTime(provider, n)) * 1000))
  const grants = new GrantHistory(policyLogs.map((e): PolicyLog => ({ name: e.name, args: e.args, block: e.block, logIndex: e.logIndex, txHash: e.tx, time: blockMs.get(e.block)! / 1000 })))
  if (topic) names.set(topicId(topic).toLowerCase(), topic)

  // Which topic ids the --topic filter covers: its own, and registered names/filters that match it.
  const relevantName = (n: string) => topic !== null && (n === topic || topicMatches(n, topic) || topicMatches(topic, n) || filterCovers(topic, n))
  const topicIds = new Set<string>()
  if (topic) {
    topicIds.add(topicId(topic).toLowerCase())
    for (const [id, n] of names) if (relevantName(n)) topicIds.add(id)
  }

  // Journal first (its topic names label the chain's summaries of concrete topics).
  const journal = opts.dataDir ? await readJournal(opts.dataDir, fromMs, toMs, names, grants) : null

  const rows: Internal[] = []
  let notReporter = 0
  const events: ChainEvent[] = []
  if (range) {
    progress(`reading events of blocks ${range.fromBlock}–${range.toBlock}`)
    const ids = topic ? [...topicIds] : null
    const queries: (string | string[] | null)[][] = []
    if (!topic && !who) queries.push([ALL.filter((n) => n !== 'Anchored' && !SUMMARIES.has(n)).map(hash)])
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
    }
    for (const q of queries) events.push(...(await read(q, range.fromBlock, range.toBlock)))
  }
  // Anchors: those covering the range are mined after it, so read them up to the head.
  const anchorFrom = range?.fromBlock ?? (await blockRangeStart(provider, Math.ceil(fromMs / 1000), deployBlock, head))
  const anchorLogs = anchorFrom !== null ? await read([hash('Anchored')], anchorFrom, head) : []
  // Summaries, by the interval they cover: mined after it ends, so read from the range's start to the head and
  // keep those whose [fromTime, toTime) overlaps [from, to). They name topics and clients in their data:
  // fetched whole, filtered below (a few per period).
  if (anchorFrom !== null) {
    const summaries = await read([who ? [hash('SensitiveReport'), hash('SensitiveReportClear')] : eventTopics([...SUMMARIES])], anchorFrom, head)
    for (const e of summaries) {
      if (e.name !== 'DeniedSummary' && e.name !== 'SensitiveReport' && e.name !== 'SensitiveReportClear') continue
      if (e.args.fromTime * 1000 < toMs && e.args.toTime * 1000 > fromMs) events.push(e)
    }
  }
  const inRange = (e: ChainEvent) => range !== null && e.block >= range.fromBlock && e.block <= range.toBlock
  for (const e of anchorLogs) {
    if (!reporters.admits(e)) {
      if (inRange(e) && !topic && !who) notReporter++
      continue
    }
    if (inRange(e) && !topic && !who) events.push(e)
  }

  // De-duplicate (queries overlap), drop reporter-only events of unregistered addresses.
  const seen = new Set<string>()
  const kept: ChainEvent[] = []
  for (const e of events) {
    const key = `${e.tx}:${e.logIndex}`
    if (seen.has(key)) continue
    seen.add(key)
    if (!reporters.admits(e)) {
      notReporter++
      continue
    }
    kept.push(e)
  }

  progress(`reading the times of ${new Set(kept.map((e) => e.block)).size} blocks`)
  await mapLimit([...new Set(kept.map((e) => e.block))], 8, async (n) => void blockMs.set(n, (await blockTime(provider, n)) * 1000))
  const txFrom = new Map<string, string>()
  const ctx: RowContext = { names, owners, txFrom, provider, dataDir: opts.dataDir ?? null, reasons: opts.reasons, tallies: new Map() }
  for (const e of kept) {
    const made = await chainRows(e, blockMs.get(e.block)!, ctx)
    if (SUMMARIES.has(e.name)) for (const r of made) r.always = true
    rows.push(...made)
  }

  if (journal) {
    // Proven: its range's anchor, by this journal's reporter (decided from the chain, never from meta.json),
    // has the root the journal has now (`audit verify`'s rule, so the two never disagree).
    // Proven: the entry's own Merkle proof, from its content, checks against the root anchored for its range by
    // this journal's reporter (decided from the chain, as `audit verify` decides it, never from meta.json).
    progress('checking each journal entry’s proof against its anchor')
    const v = await verifyJournal({ dataDir: opts.dataDir!, client: c, fromBlock: deployBlock, fromMs, toMs, chunk: opts.chunk })
    const anchorsSeen = new Map<string, AnchorLike>()
    for (const p of v.anchors.periods) for (const a of p.anchors) anchorsSeen.set(`${a.txHash}:${a.logIndex}`, a)
    const wanted = new Map<number, number>()
    for (const r of journal.rows) if (r.seq !== null) wanted.set(r.seq, r.ms)
    const checks = await proveEntries(opts.dataDir!, [...anchorsSeen.values()], wanted)
    for (const r of journal.rows) r.proven = r.seq !== null && checks.get(r.seq)?.proven === true
    rows.push(...journal.rows)
  }

  const matches = (r: Internal) => {
    if (topic && !([...r.topicIds].some((id) => topicIds.has(id)) || (r.topic !== null && relevantName(r.topic)))) return false
    if (who && !r.mentions.has(who)) return false
    return true
  }
  const out = rows.filter((r) => (r.always || (r.ms >= fromMs && r.ms < toMs)) && matches(r))
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
    grantsAtFrom: grants
      .grantsInForceAt(fromMs - 1)
      .filter((g) => (!who || g.client === who) && (!topic || relevantName(g.rule)))
      .map((g) => ({ ...rowGrant(g), client: getAddress(g.client), role: g.role })),
  }
}

const SUMMARIES: ReadonlySet<EventName> = new Set<EventName>(['DeniedSummary', 'SensitiveReport', 'SensitiveReportClear'])

async function blockRangeStart(provider: FlyTrapClient['provider'], fromTime: number, lo: number, hi: number): Promise<number | null> {
  const r = await blockRange(provider, fromTime, Number.MAX_SAFE_INTEGER, { lo, hi })
  return r?.fromBlock ?? null
}

function publicRow(r: Internal): ReportRow {
  return { time: r.time, block: r.block, source: r.source, event: r.event, topic: r.topic, client: r.client, actor: r.actor, reason: r.reason, detail: r.detail, txHash: r.txHash, proven: r.proven, verified: r.verified, claimed: r.claimed, grant: r.grant, seq: r.seq }
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
    verified: null,
    claimed: null,
    grant: null,
    seq: null,
    ...partial,
    ms,
    order,
    mentions: new Set(mentions.filter((m): m is string => !!m).map((m) => m.toLowerCase())),
    topicIds: new Set(ids.filter((m): m is string => !!m).map((m) => m.toLowerCase())),
  }
}

interface RowContext {
  names: Map<string, string>
  owners: OwnerHistory
  txFrom: Map<string, string>
  provider: FlyTrapClient['provider']
  /** The journal, to open sensitive reports' member commitments (its own reports' roots match it). */
  dataDir: string | null
  reasons?: ReadonlyMap<string, ReasonDisclosure>
  tallies: Map<string, ReturnType<typeof rangeTally>>
}

async function chainRows(e: ChainEvent, ms: number, ctx: RowContext): Promise<Internal[]> {
  const { names, owners, txFrom, provider } = ctx
  const base = { source: 'chain' as const, event: e.name, block: e.block, txHash: e.tx }
  const order = [0, e.block, e.logIndex]
  const id = 'topic' in e.args ? e.args.topic : null
  const name = id ? (names.get(id) ?? id) : null
  const onChainReason = (e.args as { reason?: string }).reason
  const reason = onChainReason !== undefined ? displayReason(onChainReason, ctx.reasons).reason : null
  const detail = eventText(e, (t) => names.get(t) ?? t)
  const one = (p: Partial<ReportRow>, mentions: (string | null)[] = []) => [row({ ...base, topic: name, reason, detail, ...p }, ms, order, [p.client, p.actor, ...mentions], [id])]

  switch (e.name) {
    case 'TopicAdded':
      return one({ actor: e.args.owner })
    case 'TopicFeesChanged':
    case 'TopicCountriesChanged':
    case 'TopicFlagsChanged':
    case 'TopicRemoved':
    case 'RegistrationFeeChanged':
      return one({ actor: e.args.actor })
    case 'TopicTransferred':
      return one({ actor: e.args.from }, [e.args.to])
    case 'Granted':
    case 'Revoked': {
      // The contract lets only the topic's owner grant or revoke: the owner at this point is the actor.
      let actor = owners.ownerAt(e.args.topic, positionOf(e))
      if (!actor) {
        if (!txFrom.has(e.tx)) txFrom.set(e.tx, lower((await provider.getTransaction(e.tx))?.from ?? ''))
        actor = txFrom.get(e.tx) || null
      }
      return one({ client: e.args.client, actor: actor ? getAddress(actor) : null })
    }
    case 'Joined':
      return one({ client: e.args.client, actor: e.args.client })
    case 'Withdrawn':
      return one({ actor: e.args.owner }, [e.args.to])
    case 'Banned':
      return one({ topic: null, client: bannedAddress(e.args.subject), actor: e.args.reporter })
    case 'DeniedSummary': {
      const a = e.args
      return a.topics.map((t, i) => row({ ...base, topic: names.get(t) ?? t, actor: a.reporter, detail: deniedCountText(a.counts[i]!, a.fromTime, a.toTime) }, ms, [...order, i], [], [t]))
    }
    case 'SensitiveReport': {
      // A commitment: counts and the members' root on chain. The journal that produced it opens it: its
      // records for the topic and period, when their root is the one on chain, become one row each.
      const a = e.args
      const records = await journalMembers(ctx, name, a.fromTime, a.toTime, a.membersRoot)
      const opened = records === null ? '' : records.length > 0 ? `; opened from the journal (${records.length} records)` : "; the journal's records do not match it"
      const out = [row({ ...base, topic: name, actor: a.reporter, detail: `${detail}${opened}` }, ms, order, [], [id])]
      ;(records ?? []).forEach((r, i) => out.push(row({ ...base, topic: name, client: getAddress(r.address), actor: a.reporter, detail: sensitiveMemberText(r.role, r.count, a.fromTime, a.toTime, true) }, ms, [...order, i + 1], [r.address], [id])))
      return out
    }
    case 'SensitiveReportClear': {
      const a = e.args
      const out: Internal[] = []
      a.publishers.forEach((p, i) => out.push(row({ ...base, topic: name, client: p, actor: a.reporter, detail: sensitiveMemberText('publisher', a.published[i]!, a.fromTime, a.toTime, false) }, ms, [...order, i], [p], [id])))
      a.receivers.forEach((p, i) => out.push(row({ ...base, topic: name, client: p, actor: a.reporter, detail: sensitiveMemberText('receiver', a.received[i]!, a.fromTime, a.toTime, false) }, ms, [...order, a.publishers.length + i], [p], [id])))
      return out
    }
    case 'Anchored':
      return one({ actor: e.args.reporter })
    case 'ReporterAdded':
    case 'ReporterRemoved':
      return one({ client: e.args.reporter, actor: e.args.actor })
    case 'AdminChanged':
      return one({ actor: e.args.newAdmin }, [e.args.previousAdmin])
    default:
      return one({})
  }
}

// ------------------------------------------------------------------ the journal

/**
 * The journal's member records of a sensitive topic's period when their root is `root`; [] when the
 * journal has the period but other records; null without a journal (or without the period's entries).
 */
async function journalMembers(ctx: RowContext, topic: string | null, fromTime: number, toTime: number, root: string): Promise<ReturnType<typeof membersRecords>['records'] | null> {
  if (!ctx.dataDir || !topic) return null
  const key = `${fromTime}:${toTime}`
  if (!ctx.tallies.has(key)) ctx.tallies.set(key, rangeTally(ctx.dataDir, fromTime * 1000, toTime * 1000))
  const s = (await ctx.tallies.get(key)!).sensitive.get(topic)
  if (!s) return null
  try {
    const c = membersRecords(s)
    return c.membersRoot === root ? c.records : []
  } catch {
    return []
  }
}

async function readJournal(dataDir: string, fromMs: number, toMs: number, names: Map<string, string>, grants: GrantHistory): Promise<{ rows: Internal[]; invalid: number }> {
  const rows: Internal[] = []
  let invalid = 0
  for await (const { record } of readRecords(dataDir, { fromMs, toMs, onInvalid: () => void invalid++ })) {
    if (record.redacted) {
      rows.push({ ...row({ source: 'journal', event: 'redacted', detail: `entry #${record.seq} erased (audit forget${record.erasure ? `, erasure record #${record.erasure}` : ''})` }, record.t, [1, record.seq], [], []), seq: record.seq })
      continue
    }
    const e = record.entry
    if (e.topic) names.set(topicId(e.topic).toLowerCase(), e.topic)
    const parts = [e.outcome, `entry #${e.seq}`]
    if (e.clientId) parts.push(`client id ${e.clientId}`)
    if (e.country) parts.push(`country ${e.country}`)
    let client = e.address ? safeAddress(e.address) : null
    if (e.subject) {
      const banned = bannedAddress(e.subject)
      if (banned && !client) client = banned
      else if (!banned) parts.push(`subject ${e.subject}`)
    }
    if (e.until !== undefined) parts.push(`until ${iso(e.until)}`)
    // A coalesced entry stands for several identical decisions: say how many, and since when.
    if (e.count !== undefined) parts.push(`count ${e.count} since ${iso(e.since ?? e.t)}`)
    if (e.kind === 'erasure' && e.erasure) {
      const b = e.erasure as { redacts?: unknown[]; basis?: unknown; requestedBy?: unknown; signer?: unknown }
      parts.push(`${b.redacts?.length ?? 0} entries redacted; basis ${String(b.basis)}; requested by ${String(b.requestedBy)}; signed by ${String(b.signer)}`)
    }
    // A claim that did not verify is not that address's activity: no client, the claim apart (still found by --client).
    const unverified = claimOnly(e) && client !== null
    const claimed = unverified ? client : null
    if (unverified) client = null
    const verified = claimed !== null ? false : e.address ? true : null
    const grant = grantFor(grants, e)
    const r = row({ source: 'journal', event: e.kind, topic: e.topic ?? null, client, reason: e.reason, detail: parts.join('; '), proven: false, verified, claimed, grant }, e.t, [1, e.seq], [client, claimed], [e.topic ? topicId(e.topic) : null, e.kind === 'connect' && e.outcome === 'deny' ? topicId(CONNECT_TOPIC) : null])
    rows.push({ ...r, entry: e, seq: e.seq })
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

export const CSV_COLUMNS = ['time', 'block', 'source', 'event', 'topic', 'client', 'actor', 'reason', 'detail', 'txHash', 'proven', 'verified', 'claimed', 'grantKind', 'grantRule', 'grantTx', 'grantBy', 'grantAt', 'grantUntil', 'grantReason', 'seq'] as const

/** A row as the CSV's flat columns (the grant's fields prefixed). */
export function csvFields(r: ReportRow): Record<(typeof CSV_COLUMNS)[number], unknown> {
  const g = r.grant
  return { ...r, grantKind: g?.kind ?? null, grantRule: g?.rule ?? null, grantTx: g?.tx ?? null, grantBy: g?.by ?? null, grantAt: g?.at ?? null, grantUntil: g ? (g.until ?? 'never') : null, grantReason: g?.reason ?? null }
}

/**
 * RFC 4180 CSV: a header row, CRLF line ends, fields with a comma, quote or line break quoted with quotes
 * doubled. Text that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a leading
 * apostrophe: topic names and reasons come from anyone who can register a topic.
 */
export function toCsv(rows: readonly ReportRow[]): string {
  const lines = [CSV_COLUMNS.join(','), ...rows.map((r) => csvFields(r)).map((r) => CSV_COLUMNS.map((k) => csvCell(r[k])).join(','))]
  return lines.join('\r\n') + '\r\n'
}

/** One CSV field: null/undefined empty, quoted when needed, formula-looking text defused with a leading apostrophe. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return ''
  let s = String(v)
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

/** The report as stable, pretty JSON (key order fixed by the types above). */
export function toJson(report: AuditReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

/** Parses --from/--to: ISO date or time, unix seconds, or "7d"/"12h" ago. A bare date as `end` means the end of that day. */
export function parseReportTime(value: string, opts: { end?: boolean; now?: number; flag?: string } = {}): number {
  return parseDate(value, opts.flag ?? (opts.end ? '--to' : '--from'), { relative: 'past', end: opts.end, now: opts.now })
}
