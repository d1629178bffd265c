/**
 * What the auditors' API returns: the view types (an event, a ban, a denied summary, a sensitive report, an
 * anchor, a topic, a member, the index status) and the queries over the records the chain index keeps
 * (chain-index.ts), and the response shapes built from them. Queries never touch the chain. The UI imports
 * these types (type-only, erased from its bundle) instead of copying them.
 */
import { getAddress } from 'ethers'
import { FOREVER, formatFee, topicId } from '../chain/codec.js'
import type { MemberInfo, TopicInfo } from '../chain/client.js'
import { isoFromMs } from '../chain/events.js'
import type { ClientRefusal } from './traffic.js'

/** One contract event, as the API shows it. Optional fields are absent when they do not apply. */
export interface IndexEvent {
  /** Block time, ISO 8601 UTC. */
  time: string
  block: number
  /** Log index within the block (with block: the event's position, used by cursors). */
  logIndex: number
  tx: string
  /** The contract event name: TopicAdded, Granted, Banned … */
  type: string
  topic?: string
  client?: string
  actor?: string
  /** As on chain, or for a committed reason "[committed 0x…; not disclosed]" / its disclosed text, marked. */
  reason?: string
  /** A committed reason (`commit:0x…` on chain): the commitment. */
  reasonCommitment?: string
  /** A committed reason whose text the server's reasons.jsonl has, and which opens the commitment. */
  reasonDisclosed?: boolean
  /** The event's specifics (chain/events.ts eventText). */
  detail?: string
}

export interface BanRecord {
  time: string
  block: number
  logIndex: number
  tx: string
  /** The 32-byte subject: a padded address or a keyed IP hash (chain/events.ts decodeBanSubject). */
  subject: string
  /** The banned address when the subject is one, else null (an IP ban). */
  client: string | null
  until: string
  reason: string
  reporter: string
}

export interface DeniedCount {
  topic: string
  topicId: string
  count: number
}

export interface DeniedRecord {
  time: string
  block: number
  logIndex: number
  tx: string
  reporter: string
  fromTime: string
  toTime: string
  total: number
  counts: DeniedCount[]
}

export interface MemberCount {
  client: string
  count: number
}

export interface SensitiveRecord {
  time: string
  block: number
  logIndex: number
  tx: string
  reporter: string
  topic: string
  fromTime: string
  toTime: string
  /** committed: counts and the members' Merkle root only (the default); clear: addresses listed (a publicSensitiveLists deployment). */
  form: 'committed' | 'clear'
  /** Distinct publishers and receivers, and their allowed publishes / deliveries in total. */
  publisherCount: number
  published: number
  receiverCount: number
  received: number
  /** committed: the root of the per-address records (src/lib/audit/sensitive-members.ts); clear: null. */
  membersRoot: string | null
  /** clear only (empty when committed): who, and how many. */
  publishers: MemberCount[]
  receivers: MemberCount[]
}

export type AnchorStatus = 'verified' | 'mismatch' | 'unchecked'

export interface AnchorView {
  time: string
  block: number
  logIndex: number
  tx: string
  /** The journal entries it pins: firstSeq..firstSeq+count-1 (count 0: an empty period). */
  firstSeq: number
  root: string
  /** Root of their scope index (0x00…00 for an empty period). */
  index: string
  count: number
  /** The journal's hash-chain value after the last of them. */
  chain: string
  fromTime: string
  toTime: string
  reporter: string
  status: AnchorStatus
}

export interface TopicView {
  name: string
  id: string
  owner: string
  pubFeeEth: string
  subFeeEth: string
  sensitive: boolean
  open: boolean
  /** Seconds of access one join buys; 0 = permanent. */
  periodSeconds: number
  countries: string[]
  /** Clients with a right that is valid now. */
  members: number
}

export interface MemberView {
  client: string
  /** The right is valid now. */
  publish: boolean
  subscribe: boolean
  /** null = none, "never" = until revoked, else ISO time (exclusive). */
  pubExpiry: string | null
  subExpiry: string | null
  /** active: a right is valid now; expired: a right has lapsed; revoked: no right left (revoked, or never given). */
  status: 'active' | 'expired' | 'revoked'
}

/** A client's grant on one topic. */
export type RightView = MemberView & { topic: string }

export interface IndexStatus {
  chainId: number
  contract: string
  deployBlock: number
  /** The last block the index has read. */
  block: number
  /** The last poll reached the head without error. */
  synced: boolean
  lastSyncAt: string | null
  lastError: string | null
  topics: number
  members: number
  events: number
  bans: number
  anchors: number
  /** Reporter-only events from unregistered addresses, not shown. */
  ignored: number
  journal: string | null
}

export interface ActivityBucket {
  start: string
  counts: Record<string, number>
  /** Refusals per topic, from the denied summaries of periods that start in the bucket. */
  refusals: Record<string, number>
}

/** GET /api/status. */
export interface StatusView extends IndexStatus {
  /** GET /api/evidence can build bundles (the server has the journal and the reporter key). */
  evidence: boolean
  /** A block explorer base URL: the UI links a tx to <explorer>/tx/<hash> and a block to <explorer>/block/<n>; null: none. */
  explorer: string | null
}

/** GET /api/topics/<name>. */
export interface TopicDetail {
  /** null: the topic was removed (the index still knows its history). */
  topic: TopicView | null
  members: MemberView[]
  /** Latest first, at most the API's history limit; historyTotal counts them all. */
  history: IndexEvent[]
  historyTotal: number
  sensitiveReports: SensitiveRecord[]
}

/** GET /api/clients/<address>. */
export interface ClientDetail {
  address: string
  rights: RightView[]
  history: IndexEvent[]
  historyTotal: number
  /** Its refused attempts in the proxy's journal, latest first (at most the history limit); null without a journal. */
  refusals: ClientRefusal[] | null
  refusalsTotal: number
}

/** GET /api/activity. */
export interface ActivityView {
  from: string
  to: string
  bucket: 'hour' | 'day'
  buckets: ActivityBucket[]
}

export interface EventFilter {
  fromMs?: number
  toMs?: number
  topic?: string
  client?: string
  types?: ReadonlySet<string>
}

/** An event as kept by the index: the public one plus what filters need. */
export interface IndexEntry {
  event: IndexEvent
  ms: number
  topicId: string | null
  /** Lower-case addresses the event names (client, actor, reporter subjects, sensitive-report members). */
  mentions: Set<string>
}

/** What the chain index keeps, as the queries read it. */
export interface IndexRecords {
  readonly entries: readonly IndexEntry[]
  /** The topics() view, as last read. */
  readonly topics: readonly TopicInfo[]
  /** topic id → client (lower) → grant. */
  readonly members: ReadonlyMap<string, ReadonlyMap<string, MemberInfo>>
  /** topic id (lower) → name, for every topic ever seen. */
  readonly names: ReadonlyMap<string, string>
  readonly bans: readonly BanRecord[]
  readonly denied: readonly DeniedRecord[]
  readonly sensitive: readonly SensitiveRecord[]
  readonly anchors: readonly AnchorView[]
}

/** An expiry as the views show it: null = none, "never" = until revoked, else ISO 8601 UTC. */
export const expiryIso = (e: bigint): string | null => (e === 0n ? null : e === FOREVER ? 'never' : isoFromMs(Number(e) * 1000))

/** Chain time when it is ahead of the wall clock (as on a dev chain moved forward), else now. */
export function nowSec(r: IndexRecords): number {
  const last = r.entries.at(-1)
  return Math.max(Math.floor(Date.now() / 1000), last ? Math.floor(last.ms / 1000) : 0)
}

export function memberView(m: MemberInfo, now: number): MemberView {
  const valid = (e: bigint) => e === FOREVER || e > BigInt(now)
  const publish = valid(m.pubExpiry)
  const subscribe = valid(m.subExpiry)
  const status = publish || subscribe ? 'active' : m.pubExpiry === 0n && m.subExpiry === 0n ? 'revoked' : 'expired'
  return { client: getAddress(m.client), publish, subscribe, pubExpiry: expiryIso(m.pubExpiry), subExpiry: expiryIso(m.subExpiry), status }
}

/** Every client a Granted/Joined/Revoked named on this topic, with its current grant (none included). */
export function membersOf(r: IndexRecords, name: string): MemberView[] {
  const now = nowSec(r)
  return [...(r.members.get(topicId(name).toLowerCase())?.values() ?? [])].map((m) => memberView(m, now))
}

export function topicViews(r: IndexRecords): TopicView[] {
  return r.topics.map((t) => ({
    name: t.name,
    id: t.id.toLowerCase(),
    owner: getAddress(t.owner),
    pubFeeEth: formatFee(t.pubFee),
    subFeeEth: formatFee(t.subFee),
    sensitive: t.sensitive,
    open: t.open,
    periodSeconds: t.period,
    countries: t.countries,
    members: membersOf(r, t.name).filter((m) => m.publish || m.subscribe).length,
  }))
}

/** Whether the index has ever seen this topic name (it may have been removed since). */
export function knowsTopic(r: IndexRecords, name: string): boolean {
  return r.names.get(topicId(name).toLowerCase()) === name
}

/** A client's grants on every current topic it was ever named on. */
export function rightsOf(r: IndexRecords, address: string): RightView[] {
  const now = nowSec(r)
  const who = address.toLowerCase()
  const out: RightView[] = []
  for (const t of r.topics) {
    const m = r.members.get(t.id.toLowerCase())?.get(who)
    if (m) out.push({ topic: t.name, ...memberView(m, now) })
  }
  return out
}

/** Events in chain order, filtered. A denied summary belongs to every topic it counts. */
export function filterEvents(r: IndexRecords, f: EventFilter = {}): IndexEvent[] {
  const id = f.topic !== undefined ? topicId(f.topic).toLowerCase() : null
  const who = f.client?.toLowerCase()
  const deniedMentions = (e: IndexEntry, id: string) => r.denied.some((d) => d.tx === e.event.tx && d.logIndex === e.event.logIndex && d.counts.some((c) => c.topicId === id))
  const out: IndexEvent[] = []
  for (const e of r.entries) {
    if (f.fromMs !== undefined && e.ms < f.fromMs) continue
    if (f.toMs !== undefined && e.ms >= f.toMs) continue
    if (id && e.topicId !== id && !(e.event.type === 'DeniedSummary' && deniedMentions(e, id))) continue
    if (who && !e.mentions.has(who)) continue
    if (f.types && !f.types.has(e.event.type)) continue
    out.push(e.event)
  }
  return out
}

/** Event counts per type and refusals per topic (from denied summaries), in time buckets. */
export function activityOf(r: IndexRecords, opts: { fromMs: number; toMs: number; bucketMs: number }): ActivityBucket[] {
  const { fromMs, toMs, bucketMs } = opts
  const start = Math.floor(fromMs / bucketMs) * bucketMs
  const n = Math.max(0, Math.ceil((toMs - start) / bucketMs))
  const buckets: ActivityBucket[] = Array.from({ length: n }, (_, i) => ({ start: new Date(start + i * bucketMs).toISOString(), counts: {}, refusals: {} }))
  const at = (ms: number) => (ms >= fromMs && ms < toMs ? buckets[Math.floor((ms - start) / bucketMs)] : undefined)
  for (const e of r.entries) {
    const b = at(e.ms)
    if (b) b.counts[e.event.type] = (b.counts[e.event.type] ?? 0) + 1
  }
  for (const d of r.denied) {
    // Refusals are counted where they happened: at the start of the summarised period.
    const b = at(Date.parse(d.fromTime))
    if (b) for (const c of d.counts) b.refusals[c.topic] = (b.refusals[c.topic] ?? 0) + c.count
  }
  return buckets
}
