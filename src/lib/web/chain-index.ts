/**
 * The auditors' chain index: everything the web API answers from, built once from THIS deployment's contract
 * events (eth_getLogs by address from the deployment block, decoded by chain/events.ts, which drops logs of
 * any other address) and kept in step by polling for new blocks. Requests never touch the chain: they read
 * the records below (through views.ts), which a sync replaces only after all of its chain reads are done (so
 * a request never sees half a block).
 *
 * - topics: the topics() view, re-read whenever a topic event arrives; members: every client a Granted,
 *   Joined or Revoked event named, with its current grant from the member() view;
 * - events: every event with its block time, the sender of its transaction as actor (policy changes) or the
 *   reporter (reporter records), reason and its one-line text (chain/events.ts eventText);
 * - bans, denied-attempt summaries, sensitive-topic reports and anchors: reporter-only events, kept only when
 *   their reporter was registered at that point of the chain (chain/reporters.ts);
 * - anchors get a verification status against a local journal (verify.ts) when one is given.
 */
import { getAddress } from 'ethers'
import { getLogsChunked, type FlyTrapClient, type MemberInfo, type TopicInfo } from '../chain/client.js'
import { topicId } from '../chain/codec.js'
import { bannedAddress, decodeLogs, eventText, isoFromMs, REPORTER_ONLY, type ChainEvent, type EventName } from '../chain/events.js'
import { ReporterHistory } from '../chain/reporters.js'
import { displayReason, parseReason, type ReasonDisclosure } from '../chain/reasons.js'
import { blockTime, deploymentBlock } from '../audit/blocks.js'
import { CONNECT_TOPIC, OTHER_TOPIC } from '../audit/period-reporter.js'
import { verifyJournal } from '../audit/verify.js'
import {
  activityOf,
  filterEvents,
  knowsTopic,
  membersOf,
  rightsOf,
  topicViews,
  type ActivityBucket,
  type AnchorStatus,
  type AnchorView,
  type BanRecord,
  type DeniedRecord,
  type EventFilter,
  type IndexEntry,
  type IndexEvent,
  type IndexRecords,
  type IndexStatus,
  type MemberView,
  type RightView,
  type SensitiveRecord,
  type TopicView,
} from './views.js'

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
  /** Disclosed private reasons (the owner's reasons.jsonl), by commitment. */
  reasons?: ReadonlyMap<string, ReasonDisclosure>
}

const TOPIC_CHANGES = new Set<EventName>(['TopicAdded', 'TopicFeesChanged', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved'])

/** Structured record times (not event text): unix seconds as ISO 8601 UTC with milliseconds, as the API has always given them. */
const isoSec = (s: number | bigint) => isoFromMs(Number(s) * 1000)
const lower = (s: string) => s.toLowerCase()

/** The records, mutable here; views.ts reads them as IndexRecords. */
interface Records extends IndexRecords {
  entries: IndexEntry[]
  topics: TopicInfo[]
  members: Map<string, Map<string, MemberInfo>>
  names: Map<string, string>
  bans: BanRecord[]
  denied: DeniedRecord[]
  sensitive: SensitiveRecord[]
  anchors: AnchorView[]
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
  private readonly txFrom = new Map<string, string>()
  private readonly rec: Records = {
    entries: [],
    topics: [],
    members: new Map(),
    names: new Map([
      [topicId(CONNECT_TOPIC).toLowerCase(), CONNECT_TOPIC],
      [topicId(OTHER_TOPIC).toLowerCase(), OTHER_TOPIC],
    ]),
    bans: [],
    denied: [],
    sensitive: [],
    anchors: [],
  }
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
    const rec = this.rec
    const logs = await getLogsChunked(p, { address: c.address, topics: [] }, this.lastBlock + 1, this.opts.chunk, head)
    const events = decodeLogs(c.address, logs)

    // ---- all chain reads first
    const times = new Map<number, number>()
    for (const n of new Set(events.map((e) => e.block))) times.set(n, await blockTime(p, n))
    for (const e of events) {
      if (REPORTER_ONLY.has(e.name) || this.txFrom.has(e.tx)) continue
      const tx = await p.getTransaction(e.tx)
      if (tx) this.txFrom.set(e.tx, getAddress(tx.from))
    }
    // Names first (a Granted in this batch may follow the TopicAdded that names its topic).
    for (const e of events) if (e.name === 'TopicAdded') rec.names.set(e.args.topic, e.args.name)
    const topicsChanged = initial || events.some((e) => TOPIC_CHANGES.has(e.name))
    const topicList = topicsChanged ? await c.topics() : rec.topics
    const touched = new Map<string, Set<string>>()
    for (const e of events) {
      if (e.name !== 'Granted' && e.name !== 'Revoked' && e.name !== 'Joined') continue
      const id = e.args.topic
      if (!touched.has(id)) touched.set(id, new Set())
      touched.get(id)!.add(e.args.client)
    }
    // A removed and re-added topic starts a new generation: every known member is re-read.
    if (events.some((e) => e.name === 'TopicRemoved' || e.name === 'TopicAdded')) {
      for (const [id, m] of rec.members) {
        if (!touched.has(id)) touched.set(id, new Set())
        for (const info of m.values()) touched.get(id)!.add(info.client)
      }
    }
    const memberUpdates: [string, MemberInfo][] = []
    for (const [id, clients] of touched) {
      const name = rec.names.get(id)
      if (!name) continue
      for (const cl of clients) memberUpdates.push([id, await c.member(name, cl)])
    }

    // ---- then apply, synchronously
    const newEntries: IndexEntry[] = []
    let newAnchors = false
    for (const e of events) {
      this.reporters.addEvents([e])
      if (!this.reporters.admits(e)) {
        this.ignored++
        continue
      }
      const entry = this.toEntry(e, times.get(e.block)! * 1000)
      newEntries.push(entry)
      this.record(e, entry.event)
      if (e.name === 'Anchored') newAnchors = true
    }
    rec.entries = rec.entries.concat(newEntries)
    rec.topics = topicList
    for (const [id, info] of memberUpdates) {
      if (!rec.members.has(id)) rec.members.set(id, new Map())
      rec.members.get(id)!.set(lower(info.client), { ...info, client: getAddress(info.client) })
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
    this.rec.anchors = this.rec.anchors.map((a) => ({ ...a, status: status.get(lower(a.tx)) ?? 'unchecked' }))
  }

  private topicName(id: string): string {
    return this.rec.names.get(id) ?? id
  }

  private toEntry(e: ChainEvent, ms: number): IndexEntry {
    const id = 'topic' in e.args ? e.args.topic : null
    const ev: IndexEvent = { time: new Date(ms).toISOString(), block: e.block, logIndex: e.logIndex, tx: e.tx, type: e.name }
    if (id) ev.topic = this.topicName(id)
    const sender = this.txFrom.get(e.tx)
    if (sender) ev.actor = sender
    const onChainReason = (e.args as { reason?: string }).reason
    if (onChainReason !== undefined) {
      const p = parseReason(onChainReason)
      const shown = displayReason(onChainReason, this.opts.reasons)
      ev.reason = shown.reason
      if (p.committed) {
        ev.reasonCommitment = p.commitment
        ev.reasonDisclosed = shown.disclosed
      }
    }
    const mentions: (string | undefined)[] = []
    switch (e.name) {
      case 'TopicAdded':
        mentions.push(e.args.owner)
        break
      case 'TopicTransferred':
        mentions.push(e.args.to, e.args.from)
        break
      case 'Granted':
      case 'Revoked':
      case 'Joined':
        ev.client = e.args.client
        break
      case 'Withdrawn':
        mentions.push(e.args.to)
        break
      case 'ReporterAdded':
      case 'ReporterRemoved':
        ev.client = e.args.reporter
        break
      case 'AdminTransferStarted':
        mentions.push(e.args.pendingAdmin)
        break
      case 'AdminChanged':
        mentions.push(e.args.previousAdmin, e.args.newAdmin)
        break
      case 'Banned': {
        ev.actor = e.args.reporter
        const banned = bannedAddress(e.args.subject)
        if (banned) ev.client = banned
        break
      }
      case 'SensitiveReportClear':
        ev.actor = e.args.reporter
        mentions.push(...e.args.publishers, ...e.args.receivers)
        break
      case 'DeniedSummary':
      case 'SensitiveReport':
      case 'Anchored':
        ev.actor = e.args.reporter
        break
    }
    const detail = eventText(e, (t) => this.topicName(t))
    if (detail !== null) ev.detail = detail
    mentions.push(ev.client, ev.actor)
    return { event: ev, ms, topicId: id, mentions: new Set(mentions.filter((m): m is string => !!m).map(lower)) }
  }

  private record(e: ChainEvent, ev: IndexEvent): void {
    const base = { time: ev.time, block: ev.block, logIndex: ev.logIndex, tx: ev.tx }
    const rec = this.rec
    switch (e.name) {
      case 'Banned': {
        const a = e.args
        rec.bans.push({ ...base, subject: a.subject, client: ev.client ?? null, until: isoSec(a.until), reason: a.reason, reporter: a.reporter })
        break
      }
      case 'DeniedSummary': {
        const a = e.args
        const items = a.topics.map((t, i) => ({ topic: this.topicName(t), topicId: t, count: a.counts[i] ?? 0 }))
        rec.denied.push({ ...base, reporter: a.reporter, fromTime: isoSec(a.fromTime), toTime: isoSec(a.toTime), total: items.reduce((s, x) => s + x.count, 0), counts: items })
        break
      }
      case 'SensitiveReport': {
        const a = e.args
        rec.sensitive.push({
          ...base,
          reporter: a.reporter,
          topic: this.topicName(a.topic),
          fromTime: isoSec(a.fromTime),
          toTime: isoSec(a.toTime),
          form: 'committed',
          publisherCount: a.publishers,
          published: a.published,
          receiverCount: a.receivers,
          received: a.received,
          membersRoot: a.membersRoot,
          publishers: [],
          receivers: [],
        })
        break
      }
      case 'SensitiveReportClear': {
        const a = e.args
        rec.sensitive.push({
          ...base,
          reporter: a.reporter,
          topic: this.topicName(a.topic),
          fromTime: isoSec(a.fromTime),
          toTime: isoSec(a.toTime),
          form: 'clear',
          publisherCount: a.publishers.length,
          published: a.published.reduce((s, n) => s + n, 0),
          receiverCount: a.receivers.length,
          received: a.received.reduce((s, n) => s + n, 0),
          membersRoot: null,
          publishers: a.publishers.map((p, i) => ({ client: p, count: a.published[i] ?? 0 })),
          receivers: a.receivers.map((p, i) => ({ client: p, count: a.received[i] ?? 0 })),
        })
        break
      }
      case 'Anchored': {
        const a = e.args
        rec.anchors.push({
          ...base,
          firstSeq: a.firstSeq,
          root: a.root,
          index: a.index,
          count: a.count,
          chain: a.chain,
          fromTime: isoSec(a.fromTime),
          toTime: isoSec(a.toTime),
          reporter: a.reporter,
          status: this.anchorStatus.get(lower(ev.tx)) ?? 'unchecked',
        })
        break
      }
    }
  }

  // ------------------------------------------------------------------ reads (views.ts; no chain access)

  status(): IndexStatus {
    return {
      chainId: this.chainId,
      contract: getAddress(this.client.address),
      deployBlock: this.deployBlock,
      block: this.lastBlock,
      synced: this.synced,
      lastSyncAt: this.lastSyncAt === null ? null : new Date(this.lastSyncAt).toISOString(),
      lastError: this.lastError,
      topics: this.rec.topics.length,
      members: this.topics().reduce((s, t) => s + t.members, 0),
      events: this.rec.entries.length,
      bans: this.rec.bans.length,
      anchors: this.rec.anchors.length,
      ignored: this.ignored,
      journal: this.dataDir,
    }
  }

  topics(): TopicView[] {
    return topicViews(this.rec)
  }

  topic(name: string): TopicView | null {
    return this.topics().find((t) => t.name === name) ?? null
  }

  /** Whether the index has ever seen this topic name (it may have been removed since). */
  knowsTopic(name: string): boolean {
    return knowsTopic(this.rec, name)
  }

  /** Every client a Granted/Joined/Revoked named on this topic, with its current grant (none included). */
  members(name: string): MemberView[] {
    return membersOf(this.rec, name)
  }

  /** A client's grants on every current topic it was ever named on. */
  rights(address: string): RightView[] {
    return rightsOf(this.rec, address)
  }

  /** Events in chain order, filtered. */
  events(f: EventFilter = {}): IndexEvent[] {
    return filterEvents(this.rec, f)
  }

  bans(): readonly BanRecord[] {
    return this.rec.bans
  }

  denied(): readonly DeniedRecord[] {
    return this.rec.denied
  }

  sensitive(topic?: string): readonly SensitiveRecord[] {
    return topic === undefined ? this.rec.sensitive : this.rec.sensitive.filter((s) => s.topic === topic)
  }

  anchors(): readonly AnchorView[] {
    return this.rec.anchors
  }

  /** Event counts per type and refusals per topic (from denied summaries), in time buckets. */
  activity(opts: { fromMs: number; toMs: number; bucketMs: number }): ActivityBucket[] {
    return activityOf(this.rec, opts)
  }
}
