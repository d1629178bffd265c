/**
 * Traffic over time for the auditors' UI: allowed accesses, refusals by reason and sensitive deliveries per
 * time bucket, plus the totals by reason and per sensitive topic. From the proxy's journal when the server has
 * one (`audit serve --data-dir`): every decision with its machine reason. Otherwise from the chain's period
 * summaries: denied summaries only count per topic (no reason on chain), so refusals are split into refused
 * connections and refused topic access; sensitive reports give the deliveries; accesses are unknown (null).
 */
import { readRecords } from '../audit/journal-files.js'
import { CONNECT_TOPIC, OTHER_TOPIC } from '../audit/period-reporter.js'
import type { DeniedRecord, SensitiveRecord } from './views.js'

export interface TrafficBucket {
  start: string
  /** Allowed connects, publishes and subscribes; null from the chain (it records no accesses). */
  accesses: number | null
  /** Refusals by reason code (journal: "no-grant", "bad-signature"…; chain: "connect" or "topic"). */
  refusals: Record<string, number>
  /** Deliveries allowed on sensitive topics. */
  sensitive: number
}

export interface SensitiveTopicTraffic {
  topic: string
  published: number
  delivered: number
  /** Distinct publishers and receivers (the journal's addresses; on chain the reports' counts, summed per period). */
  publishers: number
  receivers: number
}

/** A refused topic (or $connect / $other); `registered` false: never registered (from the chain, `topic` is then its id: the chain only knows the hash). */
export interface RefusedTopic {
  topic: string
  count: number
  registered: boolean
}

/** GET /api/traffic. */
export interface TrafficView {
  source: 'journal' | 'chain'
  from: string
  to: string
  bucket: 'hour' | 'day'
  buckets: TrafficBucket[]
  refusalsByReason: Record<string, number>
  refusedTopics: RefusedTopic[]
  sensitiveByTopic: SensitiveTopicTraffic[]
}

/** One refused attempt of a client, from the journal (GET /api/clients/<address>). */
export interface ClientRefusal {
  time: string
  seq: number
  kind: string
  reason: string
  topic: string | null
  clientId: string | null
  /** The address was only claimed by a credential that did not verify. */
  unverified: boolean
  count: number
}

const ACCESS_KINDS = new Set(['connect', 'publish', 'subscribe'])
const ATTEMPT_KINDS = new Set(['connect', 'publish', 'subscribe', 'will'])

interface Range {
  fromMs: number
  toMs: number
  bucketMs: number
}

function emptyBuckets(r: Range, accesses: number | null): { buckets: TrafficBucket[]; at: (ms: number) => TrafficBucket | undefined } {
  const start = Math.floor(r.fromMs / r.bucketMs) * r.bucketMs
  const n = Math.max(0, Math.ceil((r.toMs - start) / r.bucketMs))
  const buckets: TrafficBucket[] = Array.from({ length: n }, (_, i) => ({ start: new Date(start + i * r.bucketMs).toISOString(), accesses, refusals: {}, sensitive: 0 }))
  return { buckets, at: (ms) => (ms >= r.fromMs && ms < r.toMs ? buckets[Math.floor((ms - start) / r.bucketMs)] : undefined) }
}

const bump = (m: Record<string, number>, k: string, n: number) => (m[k] = (m[k] ?? 0) + n)

function view(source: TrafficView['source'], r: Range, buckets: TrafficBucket[], byReason: Record<string, number>, refused: Map<string, RefusedTopic>, sens: Map<string, SensitiveTopicTraffic>): TrafficView {
  return {
    source,
    from: new Date(r.fromMs).toISOString(),
    to: new Date(r.toMs).toISOString(),
    bucket: r.bucketMs >= 86_400_000 ? 'day' : 'hour',
    buckets,
    refusalsByReason: byReason,
    refusedTopics: [...refused.values()].sort((a, b) => b.count - a.count),
    sensitiveByTopic: [...sens.values()].sort((a, b) => b.delivered + b.published - (a.delivered + a.published)),
  }
}

/** From the journal: every decision, with its reason. */
export async function journalTraffic(dataDir: string, r: Range): Promise<TrafficView> {
  const { buckets, at } = emptyBuckets(r, 0)
  const byReason: Record<string, number> = {}
  const refused = new Map<string, RefusedTopic>()
  const sens = new Map<string, SensitiveTopicTraffic & { pubs: Set<string>; recvs: Set<string> }>()
  for await (const { record } of readRecords(dataDir, { fromMs: r.fromMs, toMs: r.toMs })) {
    if (record.redacted) continue
    const e = record.entry
    const b = at(e.since ?? e.t)
    if (!b) continue
    const n = e.count ?? 1
    if (e.outcome === 'allow') {
      if (ACCESS_KINDS.has(e.kind)) b.accesses = (b.accesses ?? 0) + n
      if (e.sensitive && e.topic && (e.kind === 'publish' || e.kind === 'deliver')) {
        let s = sens.get(e.topic)
        if (!s) sens.set(e.topic, (s = { topic: e.topic, published: 0, delivered: 0, publishers: 0, receivers: 0, pubs: new Set(), recvs: new Set() }))
        if (e.kind === 'deliver') {
          b.sensitive += n
          s.delivered += n
          if (e.address) s.recvs.add(e.address.toLowerCase())
        } else {
          s.published += n
          if (e.address) s.pubs.add(e.address.toLowerCase())
        }
        s.publishers = s.pubs.size
        s.receivers = s.recvs.size
      }
      continue
    }
    if (!ATTEMPT_KINDS.has(e.kind)) continue
    bump(b.refusals, e.reason, n)
    bump(byReason, e.reason, n)
    const name = e.kind === 'connect' ? CONNECT_TOPIC : e.topic
    if (name) {
      const t = refused.get(name) ?? { topic: name, count: 0, registered: true }
      t.count += n
      refused.set(name, t)
    }
  }
  const plain = new Map([...sens].map(([k, { pubs: _p, recvs: _r, ...s }]) => [k, s]))
  return view('journal', r, buckets, byReason, refused, plain)
}

const HASH = /^0x[0-9a-fA-F]{64}$/

/** From the chain's period summaries: refusals per topic (connect or topic), sensitive reports. */
export function chainTraffic(denied: readonly DeniedRecord[], sensitive: readonly SensitiveRecord[], r: Range): TrafficView {
  const { buckets, at } = emptyBuckets(r, null)
  const byReason: Record<string, number> = {}
  const refused = new Map<string, RefusedTopic>()
  const sens = new Map<string, SensitiveTopicTraffic>()
  for (const d of denied) {
    // Counted where they happened: at the start of the summarised period.
    const b = at(Date.parse(d.fromTime))
    if (!b) continue
    for (const c of d.counts) {
      const reason = c.topic === CONNECT_TOPIC ? 'connect' : 'topic'
      bump(b.refusals, reason, c.count)
      bump(byReason, reason, c.count)
      const t = refused.get(c.topic) ?? { topic: c.topic, count: 0, registered: !HASH.test(c.topic) || c.topic === OTHER_TOPIC }
      t.count += c.count
      refused.set(c.topic, t)
    }
  }
  for (const s of sensitive) {
    const b = at(Date.parse(s.fromTime))
    if (!b) continue
    b.sensitive += s.received
    const t = sens.get(s.topic) ?? { topic: s.topic, published: 0, delivered: 0, publishers: 0, receivers: 0 }
    t.published += s.published
    t.delivered += s.received
    t.publishers += s.publisherCount
    t.receivers += s.receiverCount
    sens.set(s.topic, t)
  }
  return view('chain', r, buckets, byReason, refused, sens)
}

/** A client's refused attempts in the journal, latest first, at most `limit`; `total` counts them all. */
export async function clientRefusals(dataDir: string, address: string, limit: number): Promise<{ refusals: ClientRefusal[]; total: number }> {
  const who = address.toLowerCase()
  const all: ClientRefusal[] = []
  for await (const { record } of readRecords(dataDir)) {
    if (record.redacted) continue
    const e = record.entry
    if (e.outcome !== 'deny' || !ATTEMPT_KINDS.has(e.kind) || e.address?.toLowerCase() !== who) continue
    all.push({ time: new Date(e.t).toISOString(), seq: e.seq, kind: e.kind, reason: e.reason, topic: e.topic ?? null, clientId: e.clientId ?? null, unverified: !!e.unverified, count: e.count ?? 1 })
  }
  return { refusals: all.reverse().slice(0, limit), total: all.length }
}
