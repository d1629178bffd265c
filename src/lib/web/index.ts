/**
 * The auditors' index: everything the web API answers from, built once from THIS deployment's contract
 * events (eth_getLogs by address from the deployment block, decoded by the one client's parseLogs, which
 * drops logs of any other address) and kept in step by polling for new blocks. Requests never touch the
 * chain: they read the arrays and maps below, which a sync replaces only after all of its chain reads are
 * done (so a request never sees half a block).
 *
 * - topics: the topics() view, re-read whenever a topic event arrives; members: every client a Granted,
 *   Joined or Revoked event named, with its current grant from the member() view;
 * - events: every event with its block time, the sender of its transaction as actor (policy changes) or the
 *   reporter (reporter records), reason and a one-line detail;
 * - bans, denied-attempt summaries, sensitive-topic reports and anchors: reporter-only events, kept only when
 *   their reporter was registered at that point of the chain (ReporterAdded/ReporterRemoved replayed);
 * - anchors get a verification status against a local journal (verify.ts) when one is given.
 */
import { formatEther, getAddress, type Log, type LogDescription } from 'ethers'
import { argsOf, getLogsChunked, type FlyTrapClient, type MemberInfo, type TopicInfo } from '../chain/client.js'
import { decodeCountries, FOREVER, roleNames, topicId } from '../chain/codec.js'
import { blockTime, deploymentBlock } from '../audit/blocks.js'
import { anchoredSeqs } from '../audit/report.js'
import { ReporterHistory } from '../chain/reporters.js'
import { CONNECT_TOPIC, OTHER_TOPIC } from '../audit/reporting.js'
import { verifyJournal } from '../audit/verify.js'

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
  reason?: string
  detail?: string
}

export interface BanRecord {
  time: string
  block: number
  logIndex: number
  tx: string
  /** The 32-byte subject: a padded address or a keyed IP hash. */
  subject: string
  /** The banned address when the subject is one, else null (an IP ban). */
  client: string | null
  until: string
  reason: string
  reporter: string
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
  counts: { topic: string; topicId: string; count: number }[]
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
  publishers: { client: string; count: number }[]
  receivers: { client: string; count: number }[]
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
}

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

export interface ChainIndexOptions {
  client: FlyTrapClient
  /** The contract's deployment block (default: found on chain by eth_getCode binary search, else 0). */
  deployBlock?: number
  /** A proxy data directory whose journal anchors are verified against. */
  dataDir?: string
  /** How often to poll for new blocks (ms, default 2000; 0 = never, call sync() yourself). */
  pollIntervalMs?: number
  /** Blocks per eth_getLogs request. */
  chunk?: number
  onProgress?: (text: string) => void
}

type Parsed = LogDescription & { log: Log }

const REPORTER_ONLY = new Set(['Banned', 'DeniedSummary', 'SensitiveReport', 'Anchored'])
const TOPIC_CHANGES = new Set(['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved'])
const MEMBER_CHANGES = new Set(['Granted', 'Revoked', 'Joined'])
const PADDED_ADDRESS = /^0x0{24}([0-9a-f]{40})$/

/** Every event name of the contract (the `type` filter accepts these). */
export const EVENT_TYPES = [
  'TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved',
  'Granted', 'Revoked', 'Joined', 'Withdrawn', 'AdminTransferStarted', 'AdminChanged', 'RegistrationFeeChanged',
  'ReporterAdded', 'ReporterRemoved', 'Banned', 'DeniedSummary', 'SensitiveReport', 'Anchored',
] as const

const lower = (s: unknown) => String(s).toLowerCase()
const isoSec = (s: unknown) => new Date(Number(s) * 1000).toISOString()
const eth = (wei: unknown) => formatEther(BigInt(wei as bigint)).replace(/\.0$/, '')
const expiryIso = (e: bigint): string | null => (e === 0n ? null : e === FOREVER ? 'never' : isoSec(e))
const flagNames = (f: number) => [f & 1 ? 'sensitive' : '', f & 2 ? 'open' : ''].filter(Boolean).join(',') || 'none'
const period = (p: unknown) => (Number(p) ? `${Number(p)} s` : 'permanent')

function countries(packed: unknown): string {
  try {
    return decodeCountries(String(packed)).join(' ') || 'anywhere'
  } catch {
    return String(packed)
  }
}

/** Internal event: the public one plus what filters need. */
interface Entry {
  event: IndexEvent
  ms: number
  topicId: string | null
  /** Lower-case addresses the event names (client, actor, reporter subjects, sensitive-report members). */
  mentions: Set<string>
}

export class ChainIndex {
  readonly client: FlyTrapClient
  readonly dataDir: string | null
  private readonly opts: ChainIndexOptions
  private chainId = 0
  private deployBlock = 0
  private lastBlock = -1
  private lastSyncAt: number | null = null
  private lastError: string | null = null
  private synced = false
  private ignored = 0
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private running: Promise<void> | null = null

  private readonly reporters = new ReporterHistory()
  private readonly names = new Map<string, string>([
    [topicId(CONNECT_TOPIC).toLowerCase(), CONNECT_TOPIC],
    [topicId(OTHER_TOPIC).toLowerCase(), OTHER_TOPIC],
  ])
  private readonly txFrom = new Map<string, string>()
  private entries: Entry[] = []
  private topicList: TopicInfo[] = []
  /** topic id → client (lower) → grant */
  private memberMap = new Map<string, Map<string, MemberInfo>>()
  private banList: BanRecord[] = []
  private deniedList: DeniedRecord[] = []
  private sensitiveList: SensitiveRecord[] = []
  private anchorList: AnchorView[] = []
  private anchorStatus = new Map<string, AnchorStatus>()

  private constructor(opts: ChainIndexOptions) {
    this.opts = opts
    this.client = opts.client
    this.dataDir = opts.dataDir ?? null
  }

  /** Builds the index from the deployment block to the head, then polls (unless pollIntervalMs is 0). */
  static async create(opts: ChainIndexOptions): Promise<ChainIndex> {
    const index = new ChainIndex(opts)
    await index.load()
    index.schedule()
    return index
  }

  private async load(): Promise<void> {
    const p = this.client.provider
    const progress = this.opts.onProgress ?? (() => {})
    this.chainId = Number((await p.getNetwork()).chainId)
    const head = await p.getBlockNumber()
    if (this.opts.deployBlock === undefined) progress('finding the contract’s deployment block')
    this.deployBlock = this.opts.deployBlock ?? (await deploymentBlock(p, this.client.address, { hi: head })) ?? 0
    this.lastBlock = this.deployBlock - 1
    progress(`reading events of blocks ${this.deployBlock}–${head}`)
    await this.syncTo(head, true)
  }

  private schedule(): void {
    const ms = this.opts.pollIntervalMs ?? 2_000
    if (ms <= 0 || this.closed) return
    this.timer = setTimeout(() => {
      void this.sync().finally(() => this.schedule())
    }, ms)
    this.timer.unref?.()
  }

  /** Reads new blocks up to the head (one at a time: concurrent calls share the running sync). */
  sync(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.syncTo(await this.client.provider.getBlockNumber(), false)
      } catch (err) {
        this.synced = false
        this.lastError = (err as Error).message
      } finally {
        this.running = null
      }
    })()
    return this.running
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private async syncTo(head: number, initial: boolean): Promise<void> {
    if (head <= this.lastBlock) {
      this.synced = true
      this.lastSyncAt = Date.now()
      this.lastError = null
      return
    }
    const c = this.client
    const p = c.provider
    const logs = await getLogsChunked(p, { address: c.address, topics: [] }, this.lastBlock + 1, this.opts.chunk, head)
    const events = c.parseLogs(logs).sort((a, b) => a.log.blockNumber - b.log.blockNumber || a.log.index - b.log.index)

    // ---- all chain reads first
    const times = new Map<number, number>()
    for (const n of new Set(events.map((e) => e.log.blockNumber))) times.set(n, await blockTime(p, n))
    for (const e of events) {
      if (REPORTER_ONLY.has(e.name) || this.txFrom.has(e.log.transactionHash)) continue
      const tx = await p.getTransaction(e.log.transactionHash)
      if (tx) this.txFrom.set(e.log.transactionHash, getAddress(tx.from))
    }
    // Names first (a Granted in this batch may follow the TopicAdded that names its topic).
    for (const e of events) if (e.name === 'TopicAdded') this.names.set(lower(argsOf(e).topic), String(argsOf(e).name))
    const topicsChanged = initial || events.some((e) => TOPIC_CHANGES.has(e.name))
    const topicList = topicsChanged ? await c.topics() : this.topicList
    const touched = new Map<string, Set<string>>()
    for (const e of events) {
      if (!MEMBER_CHANGES.has(e.name)) continue
      const a = argsOf(e)
      const id = lower(a.topic)
      if (!touched.has(id)) touched.set(id, new Set())
      touched.get(id)!.add(getAddress(String(a.client)))
    }
    // A removed and re-added topic starts a new generation: every known member is re-read.
    if (events.some((e) => e.name === 'TopicRemoved' || e.name === 'TopicAdded')) {
      for (const [id, m] of this.memberMap) {
        if (!touched.has(id)) touched.set(id, new Set())
        for (const info of m.values()) touched.get(id)!.add(info.client)
      }
    }
    const memberUpdates: [string, MemberInfo][] = []
    for (const [id, clients] of touched) {
      const name = this.names.get(id)
      if (!name) continue
      for (const cl of clients) memberUpdates.push([id, await c.member(name, cl)])
    }

    // ---- then apply, synchronously
    const newEntries: Entry[] = []
    let newAnchors = false
    for (const e of events) {
      const a = argsOf(e)
      const at = [e.log.blockNumber, e.log.index] as const
      if (e.name === 'ReporterAdded' || e.name === 'ReporterRemoved') this.reporters.add(String(a.reporter), at, e.name === 'ReporterAdded')
      if (REPORTER_ONLY.has(e.name) && !this.reporters.registeredAt(String(a.reporter), at)) {
        this.ignored++
        continue
      }
      const ms = times.get(e.log.blockNumber)! * 1000
      const entry = this.toEntry(e, a, ms)
      newEntries.push(entry)
      this.record(e, a, entry.event)
      if (e.name === 'Anchored') newAnchors = true
    }
    this.entries = this.entries.concat(newEntries)
    this.topicList = topicList
    for (const [id, info] of memberUpdates) {
      if (!this.memberMap.has(id)) this.memberMap.set(id, new Map())
      this.memberMap.get(id)!.set(lower(info.client), { ...info, client: getAddress(info.client) })
    }
    this.lastBlock = head
    this.synced = true
    this.lastSyncAt = Date.now()
    this.lastError = null
    if (newAnchors && this.dataDir) await this.verifyAnchors()
  }

  /** Recomputes the verification status of every anchor against the local journal. */
  async verifyAnchors(): Promise<void> {
    if (!this.dataDir) return
    const status = new Map<string, AnchorStatus>()
    try {
      const rep = await verifyJournal({ dataDir: this.dataDir, client: this.client, fromBlock: this.deployBlock })
      for (const period of rep.anchors.periods) {
        if (period.status === 'unanchored') continue
        for (const a of period.anchors) {
          // A period is verified when one of its anchors matches: say so per anchor.
          const own = a.root === period.local.root && a.count === period.local.count && (period.status !== 'index-mismatch' || (!!period.index && a.index === period.index))
          status.set(lower(a.txHash), own ? 'verified' : 'mismatch')
        }
      }
    } catch (err) {
      this.lastError = `anchors not verified: ${(err as Error).message}`
    }
    this.anchorStatus = status
    this.anchorList = this.anchorList.map((a) => ({ ...a, status: status.get(lower(a.tx)) ?? 'unchecked' }))
  }

  private topicName(id: string): string {
    return this.names.get(id) ?? id
  }

  private toEntry(e: Parsed, a: Record<string, unknown>, ms: number): Entry {
    const l = e.log
    const id = a.topic !== undefined ? lower(a.topic) : null
    const ev: IndexEvent = { time: new Date(ms).toISOString(), block: l.blockNumber, logIndex: l.index, tx: l.transactionHash, type: e.name }
    if (id) ev.topic = this.topicName(id)
    const sender = this.txFrom.get(l.transactionHash)
    if (sender) ev.actor = sender
    if (a.reason !== undefined) ev.reason = String(a.reason)
    const addr = (v: unknown) => getAddress(String(v))
    const mentions: (string | undefined)[] = []
    switch (e.name) {
      case 'TopicAdded':
        ev.detail = `owner ${addr(a.owner)}; pubFee ${eth(a.pubFee)} ETH; subFee ${eth(a.subFee)} ETH; flags ${flagNames(Number(a.flags))}; period ${period(a.period)}; countries ${countries(a.countries)}`
        mentions.push(lower(a.owner))
        break
      case 'TopicFeesChanged':
        ev.detail = `pubFee ${eth(a.pubFee)} ETH; subFee ${eth(a.subFee)} ETH; period ${period(a.period)}`
        break
      case 'TopicCountriesChanged':
        ev.detail = `countries ${countries(a.countries)}`
        break
      case 'TopicFlagsChanged':
        ev.detail = `flags ${flagNames(Number(a.flags))}`
        break
      case 'TopicTransferred':
        ev.detail = `from ${addr(a.from)} to ${addr(a.to)}`
        mentions.push(lower(a.to), lower(a.from))
        break
      case 'Granted':
        ev.client = addr(a.client)
        ev.detail = `roles ${roleNames(Number(a.roles)).join(',')}; until ${expiryIso(BigInt(a.expiresAt as bigint)) ?? 'none'}`
        break
      case 'Revoked':
        ev.client = addr(a.client)
        ev.detail = `roles ${roleNames(Number(a.roles)).join(',')}`
        break
      case 'Joined':
        ev.client = addr(a.client)
        ev.detail = `paid ${eth(a.paid)} ETH; roles ${roleNames(Number(a.roles)).join(',')}; publish until ${expiryIso(BigInt(a.pubExpiresAt as bigint)) ?? 'none'}; subscribe until ${expiryIso(BigInt(a.subExpiresAt as bigint)) ?? 'none'}`
        break
      case 'Withdrawn':
        ev.detail = `${eth(a.amount)} ETH to ${addr(a.to)}`
        mentions.push(lower(a.to))
        break
      case 'ReporterAdded':
      case 'ReporterRemoved':
        ev.client = addr(a.reporter)
        break
      case 'AdminTransferStarted':
        ev.detail = `pending admin ${addr(a.pendingAdmin)}`
        mentions.push(lower(a.pendingAdmin))
        break
      case 'AdminChanged':
        ev.detail = `admin ${addr(a.previousAdmin)} → ${addr(a.newAdmin)}`
        mentions.push(lower(a.previousAdmin), lower(a.newAdmin))
        break
      case 'RegistrationFeeChanged':
        ev.detail = `registration fee ${eth(a.fee)} ETH`
        break
      case 'Banned': {
        ev.actor = addr(a.reporter)
        const m = PADDED_ADDRESS.exec(lower(a.subject))
        if (m) ev.client = getAddress(`0x${m[1]}`)
        ev.detail = `${m ? '' : `keyed IP hash ${lower(a.subject)}; `}until ${isoSec(a.until)}`
        break
      }
      case 'DeniedSummary': {
        ev.actor = addr(a.reporter)
        const ids = (a.topics as string[]).map(lower)
        const counts = (a.counts as bigint[]).map(Number)
        ev.detail = `${ids.map((t, i) => `${this.topicName(t)}: ${counts[i]}`).join('; ')} refused in [${isoSec(a.fromTime)}, ${isoSec(a.toTime)})`
        break
      }
      case 'SensitiveReport': {
        ev.actor = addr(a.reporter)
        const pubs = (a.publishers as string[]).map(addr)
        const recv = (a.receivers as string[]).map(addr)
        mentions.push(...pubs.map(lower), ...recv.map(lower))
        ev.detail = `${pubs.length} publisher(s), ${recv.length} receiver(s) in [${isoSec(a.fromTime)}, ${isoSec(a.toTime)})`
        break
      }
      case 'Anchored':
        ev.actor = addr(a.reporter)
        ev.detail = `anchor: ${anchoredSeqs(a)} in [${isoSec(a.fromTime)}, ${isoSec(a.toTime)}); root ${String(a.root)}`
        break
    }
    mentions.push(ev.client?.toLowerCase(), ev.actor?.toLowerCase())
    return { event: ev, ms, topicId: id, mentions: new Set(mentions.filter((m): m is string => !!m)) }
  }

  private record(e: Parsed, a: Record<string, unknown>, ev: IndexEvent): void {
    const base = { time: ev.time, block: ev.block, logIndex: ev.logIndex, tx: ev.tx }
    const reporter = getAddress(String(a.reporter ?? '0x0000000000000000000000000000000000000000'))
    switch (e.name) {
      case 'Banned':
        this.banList.push({ ...base, subject: lower(a.subject), client: ev.client ?? null, until: isoSec(a.until), reason: String(a.reason), reporter })
        break
      case 'DeniedSummary': {
        const counts = (a.counts as bigint[]).map(Number)
        const items = (a.topics as string[]).map((t, i) => ({ topic: this.topicName(lower(t)), topicId: lower(t), count: counts[i] ?? 0 }))
        this.deniedList.push({ ...base, reporter, fromTime: isoSec(a.fromTime), toTime: isoSec(a.toTime), total: items.reduce((s, x) => s + x.count, 0), counts: items })
        break
      }
      case 'SensitiveReport': {
        const published = (a.published as bigint[]).map(Number)
        const received = (a.received as bigint[]).map(Number)
        this.sensitiveList.push({
          ...base,
          reporter,
          topic: this.topicName(lower(a.topic)),
          fromTime: isoSec(a.fromTime),
          toTime: isoSec(a.toTime),
          publishers: (a.publishers as string[]).map((p, i) => ({ client: getAddress(p), count: published[i] ?? 0 })),
          receivers: (a.receivers as string[]).map((p, i) => ({ client: getAddress(p), count: received[i] ?? 0 })),
        })
        break
      }
      case 'Anchored':
        this.anchorList.push({
          ...base,
          firstSeq: Number(a.firstSeq),
          root: lower(a.root),
          index: lower(a.index),
          count: Number(a.count),
          chain: lower(a.chain),
          fromTime: isoSec(a.fromTime),
          toTime: isoSec(a.toTime),
          reporter,
          status: this.anchorStatus.get(lower(ev.tx)) ?? 'unchecked',
        })
        break
    }
  }

  // ------------------------------------------------------------------ reads (no chain access)

  /** Chain time when it is ahead of the wall clock (as on a dev chain moved forward), else now. */
  private nowSec(): number {
    const last = this.entries.at(-1)
    return Math.max(Math.floor(Date.now() / 1000), last ? Math.floor(last.ms / 1000) : 0)
  }

  private memberView(m: MemberInfo, now: number): MemberView {
    const valid = (e: bigint) => e === FOREVER || e > BigInt(now)
    return { client: getAddress(m.client), publish: valid(m.pubExpiry), subscribe: valid(m.subExpiry), pubExpiry: expiryIso(m.pubExpiry), subExpiry: expiryIso(m.subExpiry) }
  }

  status(): IndexStatus {
    return {
      chainId: this.chainId,
      contract: getAddress(this.client.address),
      deployBlock: this.deployBlock,
      block: this.lastBlock,
      synced: this.synced,
      lastSyncAt: this.lastSyncAt === null ? null : new Date(this.lastSyncAt).toISOString(),
      lastError: this.lastError,
      topics: this.topicList.length,
      members: this.topics().reduce((s, t) => s + t.members, 0),
      events: this.entries.length,
      bans: this.banList.length,
      anchors: this.anchorList.length,
      ignored: this.ignored,
      journal: this.dataDir,
    }
  }

  topics(): TopicView[] {
    return this.topicList.map((t) => ({
      name: t.name,
      id: t.id.toLowerCase(),
      owner: getAddress(t.owner),
      pubFeeEth: eth(t.pubFee),
      subFeeEth: eth(t.subFee),
      sensitive: t.sensitive,
      open: t.open,
      periodSeconds: t.period,
      countries: t.countries,
      members: this.members(t.name).filter((m) => m.publish || m.subscribe).length,
    }))
  }

  topic(name: string): TopicView | null {
    return this.topics().find((t) => t.name === name) ?? null
  }

  /** Whether the index has ever seen this topic name (it may have been removed since). */
  knowsTopic(name: string): boolean {
    return this.names.get(topicId(name).toLowerCase()) === name
  }

  /** Every client a Granted/Joined/Revoked named on this topic, with its current grant (none included). */
  members(name: string): MemberView[] {
    const now = this.nowSec()
    return [...(this.memberMap.get(topicId(name).toLowerCase())?.values() ?? [])].map((m) => this.memberView(m, now))
  }

  /** A client's grants on every current topic it was ever named on. */
  rights(address: string): (MemberView & { topic: string })[] {
    const now = this.nowSec()
    const who = address.toLowerCase()
    const out: (MemberView & { topic: string })[] = []
    for (const t of this.topicList) {
      const m = this.memberMap.get(t.id.toLowerCase())?.get(who)
      if (m) out.push({ topic: t.name, ...this.memberView(m, now) })
    }
    return out
  }

  /** Events in chain order, filtered. */
  events(f: { fromMs?: number; toMs?: number; topic?: string; client?: string; types?: ReadonlySet<string> } = {}): IndexEvent[] {
    const id = f.topic !== undefined ? topicId(f.topic).toLowerCase() : null
    const who = f.client?.toLowerCase()
    const out: IndexEvent[] = []
    for (const e of this.entries) {
      if (f.fromMs !== undefined && e.ms < f.fromMs) continue
      if (f.toMs !== undefined && e.ms >= f.toMs) continue
      if (id && e.topicId !== id && !(e.event.type === 'DeniedSummary' && this.deniedMentions(e, id))) continue
      if (who && !e.mentions.has(who)) continue
      if (f.types && !f.types.has(e.event.type)) continue
      out.push(e.event)
    }
    return out
  }

  private deniedMentions(e: Entry, id: string): boolean {
    return this.deniedList.some((d) => d.tx === e.event.tx && d.logIndex === e.event.logIndex && d.counts.some((c) => c.topicId === id))
  }

  bans(): readonly BanRecord[] {
    return this.banList
  }

  denied(): readonly DeniedRecord[] {
    return this.deniedList
  }

  sensitive(topic?: string): readonly SensitiveRecord[] {
    return topic === undefined ? this.sensitiveList : this.sensitiveList.filter((s) => s.topic === topic)
  }

  anchors(): readonly AnchorView[] {
    return this.anchorList
  }

  /** Event counts per type and refusals per topic (from denied summaries), in time buckets. */
  activity(opts: { fromMs: number; toMs: number; bucketMs: number }): { start: string; counts: Record<string, number>; refusals: Record<string, number> }[] {
    const { fromMs, toMs, bucketMs } = opts
    const start = Math.floor(fromMs / bucketMs) * bucketMs
    const n = Math.max(0, Math.ceil((toMs - start) / bucketMs))
    const buckets = Array.from({ length: n }, (_, i) => ({ start: new Date(start + i * bucketMs).toISOString(), counts: {} as Record<string, number>, refusals: {} as Record<string, number> }))
    const at = (ms: number) => (ms >= fromMs && ms < toMs ? buckets[Math.floor((ms - start) / bucketMs)] : undefined)
    for (const e of this.entries) {
      const b = at(e.ms)
      if (b) b.counts[e.event.type] = (b.counts[e.event.type] ?? 0) + 1
    }
    for (const d of this.deniedList) {
      // Refusals are counted where they happened: at the start of the summarised period.
      const b = at(Date.parse(d.fromTime))
      if (b) for (const c of d.counts) b.refusals[c.topic] = (b.refusals[c.topic] ?? 0) + c.count
    }
    return buckets
  }
}
