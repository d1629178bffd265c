/**
 * Keeps a PolicyStore in step with the FlyTrap contract. Cold start reads the whole policy consistently at
 * one block B (every view call pinned to B); afterwards each tick reads only this contract's logs since the
 * last block and re-reads the topics and (topic, client) grants they touch, pinned to the tick's last block.
 * Chain errors never escape: the store keeps serving the last synced policy and the loop retries with
 * backoff. Assumes a chain without reorgs (it never rolls back), but tolerates a head that goes backwards.
 * Ticks run on the poll timer; with `wsUrl` an eth_subscribe log notification (chain/log-source.ts) also starts
 * one at once. A notification is only a wake-up (a `removed: true` one too): the tick is the one reader.
 */
import type { Log } from 'ethers'
import { chainError, getLogsChunked, rawLogs, toTopic, type FlyTrapClient, type RawLog, type RawTopic, type TopicInfo } from '../chain/client.js'
import { chainOrder, decodeLogs, eventTopics, type ChainEvent, type EventName } from '../chain/events.js'
import { pooled, rawEthCall, rawHttpUrl } from '../chain/raw-rpc.js'
import { decodeGrantsOf, decodeTopicsPage, encodeGrantsOf, encodeTopicsPage } from '../chain/view-codec.js'
import { ReporterHistory } from '../chain/reporters.js'
import { startLogSource, type LogSource, type LogSourceMode } from '../chain/log-source.js'
import type { Logger } from '../log.js'
import type { GrantInput, PolicyStore, TopicInput } from './store.js'

/** Grants per `grantsOf` call at cold start (an eth_call reading this many grant slots stays well under node limits). */
const MEMBERS_PER_CALL = 500
/** Topics per `topicsPage` call at cold start. */
const TOPICS_PER_PAGE = 500

/** Bulk requests in flight at cold start over HTTP (the node and the proxy share a few cores). */
const IN_FLIGHT = 4
/** Pieces a cold start's log range is read in (at least), so parsing overlaps the node's answering. */
const COLD_LOG_PIECES = 64
/** The events a cold start reads: registrations (their order), members (candidates for grantsOf), reporters and bans. */
const COLD_HASHES = eventTopics(['TopicAdded', 'Granted', 'Joined', 'Banned', 'ReporterAdded', 'ReporterRemoved'])
const [TOPIC_ADDED, GRANTED, JOINED] = COLD_HASHES.map((h) => h.toLowerCase()) as [string, string, string]

const BYTES32_RE = /^0x[0-9a-f]{64}$/
/** An indexed bytes32 topic, lower case (malformed throws, as ethers' decoding would). */
function bytes32(topic: string): string {
  const t = topic.toLowerCase()
  if (!BYTES32_RE.test(t)) throw new Error(`malformed log topic: ${topic}`)
  return t
}
/** An indexed address topic, lower case; high bytes set throw (as ethers' decoding would). */
function topicAddress(topic: string): string {
  const t = bytes32(topic)
  if (!t.startsWith('0x000000000000000000000000')) throw new Error(`malformed address topic: ${topic}`)
  return `0x${t.slice(26)}`
}

export interface PolicySyncOptions {
  client: FlyTrapClient
  store: PolicyStore
  /** First block to read events from (the deployment block). Default 0. */
  fromBlock?: number
  pollIntervalMs: number
  logger?: Logger
  /**
   * A ban still in force (until > now) recorded on chain by a registered reporter: the ones in the log range of
   * each tick, and at cold start every one since fromBlock. `subject` is the bytes32 as 0x-hex, `until` unix seconds.
   */
  onBan?: (subject: string, until: number, reporter: string) => void
  /** Blocks per eth_getLogs request. Default 50,000. */
  logChunk?: number
  /** Most blocks one tick consumes (a lagging sync catches up over several ticks). Default 500,000. */
  maxBlocksPerTick?: number
  /** Backoff cap after failures. Default 10 s (or the poll interval when that is longer). */
  maxBackoffMs?: number
  /** Parallel view calls when loading grants. Default 16. */
  concurrency?: number
  /**
   * A ws:// or wss:// RPC endpoint: `eth_subscribe` logs of the contract wake the loop at once (the poll then
   * reads them as usual); whenever the subscription is not live, the poll timer alone keeps it in step. The
   * timer runs in both modes, as a backstop.
   */
  wsUrl?: string
  /** Reconnect backoff of the subscription (tests shorten it). */
  wsBackoffMs?: { min: number; max: number }
}

export interface PolicySyncStatus {
  synced: boolean
  /** Block the store is consistent with, null before the first load. */
  block: number | null
  /** Latest block seen minus `block` (0 before the first load). */
  lagBlocks: number
  /** Message of the last failed attempt; cleared by the next success. */
  lastError?: string
  /** Wall-clock ms of the last successful load or tick. */
  lastSyncAt: number | null
  /** subscription: a live eth_subscribe wakes the poll; polling: the timer alone (no --rpc-ws, or it is down). */
  mode: LogSourceMode
  /** Times the log subscription went live (0 without one). */
  subscriptions: number
}

export interface PolicySync {
  /** Resolves after the first full load (it retries until then; never rejects), or when stopped before it. */
  ready: Promise<void>
  stop(): Promise<void>
  status(): PolicySyncStatus
}


const ZERO = '0x0000000000000000000000000000000000000000'
/** Woken polls start at least this far apart. */
const MIN_WAKE_GAP_MS = 25
/** Events that change what the store holds. */
const TOPIC_EVENTS = new Set<EventName>(['TopicAdded', 'TopicCountriesChanged', 'TopicFlagsChanged', 'TopicTransferred', 'TopicRemoved'])

/** An event's place in chain order, as TopicInput.registeredAt (first registered wins in the namespace rule). */
const rank = (e: ChainEvent): number => e.block * 1_000_000 + e.logIndex

export function startPolicySync(opts: PolicySyncOptions): PolicySync {
  const { client, store, logger } = opts
  const fromBlock = opts.fromBlock ?? 0
  const chunk = opts.logChunk ?? 50_000
  const maxBlocks = opts.maxBlocksPerTick ?? 500_000
  const maxBackoff = opts.maxBackoffMs ?? Math.max(10_000, opts.pollIntervalMs)
  const concurrency = opts.concurrency ?? 16

  /** Names of every topic id seen (kept after removal: a TopicRemoved must still be resolvable). */
  const names = new Map<string, string>()
  /** Reporter registrations seen since fromBlock (the one rule: src/lib/chain/reporters.ts). */
  let reporters = new ReporterHistory()
  /** Registration at fromBlock of reporters whose history starts before it, lower-case address → registered. */
  const before = new Map<string, boolean>()

  let lastBlock: number | null = null
  let head: number | null = null
  let lastError: string | undefined
  let failures = 0
  let headBehind = false
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | null = null
  /** A wake-up came while a tick ran: run again as soon as it ends. */
  let woken = false
  /** Highest block a notification named: until the poll reaches it, retry soon (a node's head can lag its own logs). */
  let wantBlock = 0
  let wakeRetries = 0
  let lastRunAt = 0
  let resolveReady!: () => void
  const ready = new Promise<void>((resolve) => (resolveReady = resolve))

  // ---------------------------------------------------------------- pinned views

  async function view<T>(method: string, blockTag: number, ...args: unknown[]): Promise<T> {
    try {
      return (await client.contract.getFunction(method).staticCall(...args, { blockTag })) as T
    } catch (err) {
      throw chainError(err, method)
    }
  }


  async function member(name: string, topicId: string, client: string, blockTag: number): Promise<GrantInput> {
    const [pub, sub] = await view<[bigint, bigint]>('member', blockTag, name, client)
    return { topicId, client, pubExpiry: BigInt(pub), subExpiry: BigInt(sub) }
  }

  async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    const out: R[] = []
    for (let i = 0; i < items.length; i += concurrency) out.push(...(await Promise.all(items.slice(i, i + concurrency).map(fn))))
    return out
  }

  async function contractLogs(from: number, to: number, topics: (string | string[] | null)[]): Promise<ChainEvent[]> {
    const logs = await getLogsChunked(client.provider, { address: client.address, topics }, from, chunk, to)
    // decodeLogs drops logs of any other address (a misbehaving endpoint must not inject policy).
    return decodeLogs(client.address, logs)
  }

  // ---------------------------------------------------------------- bans and reporters

  interface Ban {
    subject: string
    until: number
    reporter: string
  }

  /** The registration before fromBlock of a reporter with no change since: the contract's view at that block, once per address. */
  async function registeredBefore(reporter: string, block: number): Promise<boolean> {
    const key = reporter.toLowerCase()
    const cached = before.get(key)
    if (cached !== undefined) return cached
    const value = await view<boolean>('isReporter', block, reporter)
    before.set(key, value)
    return value
  }

  /** Applies reporter events in log order; returns the bans still in force that registered reporters recorded. */
  async function scanBans(events: readonly ChainEvent[]): Promise<Ban[]> {
    reporters.addEvents(events)
    const bans: Ban[] = []
    const nowSec = Math.floor(Date.now() / 1000)
    for (const e of events) {
      if (e.name !== 'Banned') continue
      const until = Number(e.args.until > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : e.args.until)
      if (until <= nowSec) continue // over already (or recorded with a past end): nothing to enforce
      const reporter = e.args.reporter
      if (!(await reporters.registeredAtOr(reporter, [e.block, e.logIndex], registeredBefore))) {
        logger?.warn('ignored a ban from an address that is not a registered reporter', { reporter, block: e.block })
        continue
      }
      bans.push({ subject: e.args.subject, until, reporter })
    }
    return bans
  }

  function deliver(bans: readonly Ban[]): void {
    if (!opts.onBan) return
    for (const b of bans) {
      try {
        opts.onBan(b.subject, b.until, b.reporter)
      } catch (err) {
        logger?.error('ban handler failed', { error: err instanceof Error ? err.message : String(err) })
      }
    }
  }

  /** The contract refuses overlapping registrations; if some reached the chain anyway, the operator should know. */
  function warnShadowed(names: readonly string[]): void {
    const shadowed = names.filter((n) => store.entry(n)?.effective === false)
    if (shadowed.length > 0) {
      logger?.warn('ignoring registrations that overlap an earlier one of another owner (namespace rule)', { count: shadowed.length, topics: shadowed.slice(0, 10) })
    }
  }

  // ---------------------------------------------------------------- cold start

  /** Raw HTTP endpoint for the bulk reads (null: every read goes through ethers). */
  const rawUrl = rawHttpUrl(client.provider)

  /** Every topic slot at `block` (removed ones have owner 0), pages read a few at a time. */
  async function allTopics(block: number): Promise<TopicInfo[]> {
    const total = Number(await view<bigint>('topicCount', block))
    const offsets: number[] = []
    for (let offset = 0; offset < total; offset += TOPICS_PER_PAGE) offsets.push(offset)
    const pages = await pooled(offsets, IN_FLIGHT, async (offset) => {
      if (rawUrl === null) return view<RawTopic[]>('topicsPage', block, offset, TOPICS_PER_PAGE)
      try {
        return decodeTopicsPage(await rawEthCall(rawUrl, client.address, encodeTopicsPage(offset, TOPICS_PER_PAGE), block))
      } catch (err) {
        throw chainError(err, 'topicsPage')
      }
    })
    return pages.flat().map(toTopic)
  }

  /**
   * What a cold start needs of the logs up to `block`: the (topic, client) pairs ever granted or joined, the
   * position of each topic's last TopicAdded, and the reporter and ban events (decoded, in chain order). The
   * grant and registration logs are read from their indexed topics alone (no data decoding); over HTTP the
   * range is read in a few pieces, a few in flight, each dropped once folded in.
   */
  async function coldLogs(from: number, to: number): Promise<{ pairs: Map<string, Set<string>>; registeredAt: Map<string, number>; others: ChainEvent[] }> {
    const pairs = new Map<string, Set<string>>()
    const registeredAt = new Map<string, number>()
    const others: ChainEvent[] = []
    const addPair = (id: string, member: string) => {
      let set = pairs.get(id)
      if (!set) pairs.set(id, (set = new Set()))
      set.add(member)
    }
    if (from > to) return { pairs, registeredAt, others }
    if (rawUrl === null) {
      for (const e of await contractLogs(from, to, [COLD_HASHES])) {
        if (e.name === 'TopicAdded') registeredAt.set(e.args.topic, rank(e))
        else if (e.name === 'Granted' || e.name === 'Joined') addPair(e.args.topic, e.args.client.toLowerCase())
        else others.push(e)
      }
      return { pairs, registeredAt, others }
    }
    const own = client.address.toLowerCase()
    const span = to - from + 1
    const pieces = Math.max(Math.ceil(span / chunk), Math.min(COLD_LOG_PIECES, span))
    const size = Math.ceil(span / pieces)
    const ranges: [number, number][] = []
    for (let f = from; f <= to; f += size) ranges.push([f, Math.min(to, f + size - 1)])
    await pooled(ranges, IN_FLIGHT, async ([f, t]) => {
      let logs: RawLog[]
      try {
        logs = await rawLogs(rawUrl, { address: client.address, topics: [COLD_HASHES], fromBlock: f, toBlock: t })
      } catch (err) {
        throw chainError(err, 'eth_getLogs')
      }
      for (const l of logs) {
        if (l.address.toLowerCase() !== own) continue // a misbehaving endpoint must not inject policy
        const t0 = l.topics[0]?.toLowerCase()
        if (t0 === GRANTED || t0 === JOINED) {
          if (l.topics.length !== 4) throw new Error(`${t0 === GRANTED ? 'Granted' : 'Joined'}: ${l.topics.length - 1} indexed topics, expected 3`)
          addPair(bytes32(l.topics[1]!), topicAddress(l.topics[2]!))
        } else if (t0 === TOPIC_ADDED) {
          if (l.topics.length !== 3) throw new Error(`TopicAdded: ${l.topics.length - 1} indexed topics, expected 2`)
          const id = bytes32(l.topics[1]!)
          const at = Number(l.blockNumber) * 1_000_000 + Number(l.logIndex)
          if (!(at <= (registeredAt.get(id) ?? -1))) registeredAt.set(id, at) // pieces land out of order: the last one wins
        } else {
          others.push(...decodeLogs(client.address, [{ ...l, blockNumber: Number(l.blockNumber), index: Number(l.logIndex) } as unknown as Log]))
        }
      }
    })
    others.sort(chainOrder)
    return { pairs, registeredAt, others }
  }

  /** The grants of (topic, client) pairs at `block`, MEMBERS_PER_CALL pairs per grantsOf call, a few in flight. */
  async function coldGrants(pairs: Map<string, Set<string>>, live: Map<string, string>, block: number): Promise<GrantInput[]> {
    const chunks: { ids: string[]; clients: string[] }[] = []
    let cur = { ids: [] as string[], clients: [] as string[] }
    for (const [id, members] of pairs) {
      if (!live.has(id)) continue // removed since (its grants died with it)
      for (const m of members) {
        if (cur.ids.length >= MEMBERS_PER_CALL) {
          chunks.push(cur)
          cur = { ids: [], clients: [] }
        }
        cur.ids.push(id)
        cur.clients.push(m)
      }
    }
    const results = await pooled(chunks.concat(cur.ids.length > 0 ? [cur] : []), rawUrl === null ? concurrency : IN_FLIGHT, async (c) => {
      let pub: number[]
      let sub: number[]
      if (rawUrl === null) {
        const [p, q] = await view<[bigint[], bigint[]]>('grantsOf', block, c.ids, c.clients)
        ;[pub, sub] = [[...p].map(Number), [...q].map(Number)] // uint40: exact as numbers
      } else {
        try {
          ;({ pub, sub } = decodeGrantsOf(await rawEthCall(rawUrl, client.address, encodeGrantsOf(c.ids, c.clients), block)))
        } catch (err) {
          throw chainError(err, 'grantsOf')
        }
      }
      if (pub.length !== c.ids.length || sub.length !== c.ids.length) throw new Error('grantsOf: answer of the wrong length')
      const out: GrantInput[] = []
      for (let i = 0; i < c.ids.length; i++) {
        if (pub[i] === 0 && sub[i] === 0) continue
        out.push({ topicId: c.ids[i]!, client: c.clients[i]!, pubExpiry: BigInt(pub[i]!), subExpiry: BigInt(sub[i]!) })
      }
      return out
    })
    return results.flat()
  }

  async function coldStart(): Promise<void> {
    const startedAt = Date.now()
    // One block for everything: every view pinned to it, the logs read up to it, and the live poll from block + 1.
    const block = await client.provider.getBlockNumber()
    const [all, logs] = await Promise.all([allTopics(block), coldLogs(fromBlock, block)])
    const topics: TopicInfo[] = []
    for (const t of all) {
      names.set(t.id.toLowerCase(), t.name)
      if (t.owner !== ZERO) topics.push(t)
    }
    const live = new Map(topics.map((t) => [t.id.toLowerCase(), t.name]))
    // The order of registration: the last TopicAdded of each id made its current generation. A topic registered
    // before fromBlock keeps its list position, which is below every log position (and in registration order).
    const ranked: TopicInput[] = topics.map((t, i) => ({ ...t, registeredAt: logs.registeredAt.get(t.id.toLowerCase()) ?? i }))
    const grants = await coldGrants(logs.pairs, live, block)
    const events = logs.others
    reporters = new ReporterHistory()
    before.clear()
    const bans = await scanBans(events)

    if (stopped) return
    store.replaceAll({ topics: ranked, grants })
    store.markSynced(block)
    lastBlock = block
    head = block
    logger?.info('policy loaded', { block, topics: topics.length, grants: grants.length, ms: Date.now() - startedAt })
    warnShadowed(topics.map((t) => t.name))
    deliver(bans)
  }

  // ---------------------------------------------------------------- incremental

  async function poll(): Promise<boolean> {
    const latest = await client.provider.getBlockNumber()
    const last = lastBlock as number
    head = latest
    if (latest < last) {
      // Reorgs are not followed (nothing is rolled back); just do not crash or re-read, and say so once.
      if (!headBehind) logger?.warn('the chain head went backwards; keeping the synced policy', { synced: last, head: latest })
      headBehind = true
      store.markSynced(last)
      return false
    }
    headBehind = false
    if (latest === last) {
      store.markSynced(last)
      return false
    }
    const to = Math.min(latest, last + maxBlocks)
    const events = await contractLogs(last + 1, to, [])

    const touchedTopics = new Set<string>()
    const touchedGrants = new Map<string, { topicId: string; client: string }>()
    const registeredAt = new Map<string, number>()
    for (const e of events) {
      if (e.name === 'TopicAdded') {
        names.set(e.args.topic, e.args.name)
        registeredAt.set(e.args.topic, rank(e))
      }
      if (TOPIC_EVENTS.has(e.name)) touchedTopics.add((e.args as { topic: string }).topic)
      else if (e.name === 'Granted' || e.name === 'Revoked' || e.name === 'Joined') {
        const id = e.args.topic
        const member = e.args.client
        touchedGrants.set(`${id}:${member.toLowerCase()}`, { topicId: id, client: member })
      }
    }

    const topicReads = await inBatches([...touchedTopics], async (id) => {
      const name = names.get(id)
      if (name === undefined) return null
      const at = registeredAt.get(id)
      const t: TopicInput = toTopic(await view<RawTopic>('topic', to, name))
      return at === undefined ? t : { ...t, registeredAt: at }
    })
    const grantReads = await inBatches([...touchedGrants.values()], async (g) => {
      const name = names.get(g.topicId)
      if (name === undefined) {
        logger?.debug('grant event for a topic never seen', { topic: g.topicId })
        return null
      }
      return member(name, g.topicId, g.client, to)
    })
    const bans = await scanBans(events)

    if (stopped) return false
    store.batch(() => {
      for (const t of topicReads) if (t) store.upsertTopic(t) // upsertTopic treats owner 0 as removed
      for (const g of grantReads) if (g) store.setGrant(g.topicId, g.client, g.pubExpiry, g.subExpiry)
      store.markSynced(to)
    })
    lastBlock = to
    warnShadowed(topicReads.flatMap((t) => (t ? [t.name] : [])))
    if (events.length > 0) logger?.debug('policy updated', { from: last + 1, block: to, events: events.length, topics: touchedTopics.size, grants: touchedGrants.size })
    deliver(bans)
    return to < latest
  }

  // ---------------------------------------------------------------- loop

  async function tick(): Promise<void> {
    let behind = false
    try {
      if (lastBlock === null) {
        await coldStart()
        if (lastBlock !== null) resolveReady()
      } else {
        behind = await poll()
      }
      failures = 0
      lastError = undefined
    } catch (err) {
      failures++
      const e = chainError(err, lastBlock === null ? 'policy load' : 'policy sync')
      lastError = e.message
      logger?.warn('policy sync failed; serving the last synced policy', { error: e.message, failures, block: lastBlock })
    }
    if (stopped) return
    let delay = behind ? 0 : failures === 0 ? opts.pollIntervalMs : Math.min(maxBackoff, opts.pollIntervalMs * 2 ** Math.min(failures, 20))
    if (woken && lastBlock !== null) delay = Math.max(0, MIN_WAKE_GAP_MS - (Date.now() - lastRunAt))
    else if (lastBlock !== null && wantBlock > lastBlock && wakeRetries < 20) {
      wakeRetries++
      delay = Math.min(delay, 100 * wakeRetries)
    } else wakeRetries = 0
    woken = false
    timer = setTimeout(run, delay)
  }

  function run(): void {
    timer = undefined
    if (stopped) return
    lastRunAt = Date.now()
    running = tick().finally(() => (running = null))
  }

  /** A log (or a fresh subscription) says the chain moved: poll now, or right after the tick in flight. */
  function wake(block: number | null): void {
    if (stopped) return
    if (block !== null && block > wantBlock) {
      wantBlock = block
      wakeRetries = 0
    }
    if (running) {
      woken = true
      return
    }
    if (lastBlock === null) return // the cold start's retry timer owns the loop until the first load
    if (timer) clearTimeout(timer)
    // A flood of notifications (a busy contract, or a lying endpoint) costs at most one poll per MIN_WAKE_GAP_MS.
    timer = setTimeout(run, Math.max(0, MIN_WAKE_GAP_MS - (Date.now() - lastRunAt)))
  }

  run()

  let source: LogSource | undefined
  if (opts.wsUrl) {
    logger?.info('policy sync mode: polling until the log subscription is live', { pollIntervalMs: opts.pollIntervalMs })
    source = startLogSource({
      url: opts.wsUrl,
      address: client.address,
      onLog: wake,
      onMode: (mode, why) => {
        if (mode === 'subscription') {
          logger?.info('policy sync mode: subscription (eth_subscribe logs wake the poll)', { pollIntervalMs: opts.pollIntervalMs })
          wake(null) // logs of the gap before it was live are not replayed: the poll reads them
        } else logger?.info('policy sync mode: polling (the log subscription is down)', { why, pollIntervalMs: opts.pollIntervalMs })
      },
      logger,
      ...(opts.wsBackoffMs ? { minBackoffMs: opts.wsBackoffMs.min, maxBackoffMs: opts.wsBackoffMs.max } : {}),
    })
  }

  return {
    ready,
    async stop() {
      stopped = true
      await source?.stop()
      if (timer) clearTimeout(timer)
      timer = undefined
      await running
      resolveReady()
    },
    status() {
      const block = lastBlock
      return {
        synced: store.synced,
        block,
        lagBlocks: block === null || head === null ? 0 : Math.max(0, head - block),
        ...(lastError !== undefined ? { lastError } : {}),
        lastSyncAt: store.stats().lastSyncAt,
        mode: source?.mode() ?? 'polling',
        subscriptions: source?.subscriptions() ?? 0,
      }
    },
  }
}
