/**
 * The read-only JSON API over a ChainIndex: request parsing (with clear 400s), pagination and the routes.
 * Transport (http, CORS, static files) lives in server.ts; the document describing all of this in openapi.ts.
 * Every route except /api/report and /api/evidence answers from the index alone; /api/report runs the same
 * report builder as `flytrap audit report` (report.ts) for the requested range, with a small cache per chain
 * head; /api/evidence builds a signed bundle with `audit export`'s exportBundle (needs the journal and the
 * reporter key the server was started with).
 */
import { isAddress, getAddress } from 'ethers'
import { buildReport, parseReportTime, toCsv, type AuditReport } from '../audit/report.js'
import { exportBundle } from '../audit/evidence/export.js'
import { canonicalJson } from '../audit/entry.js'
import type { ErasureSigner } from '../audit/erasure.js'
import { validateTopicFilter } from '../policy/filter.js'
import { FlytrapError } from '../errors.js'
import { EVENT_TYPES } from '../chain/events.js'
import type { ChainIndex } from './chain-index.js'
import type { ActivityView, ClientDetail, StatusView, TopicDetail } from './views.js'
import { chainTraffic, clientRefusals, journalTraffic } from './traffic.js'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface ApiResponse {
  status: number
  /** JSON body (serialised by the server) or text with its content type. */
  json?: unknown
  text?: string
  headers?: Record<string, string>
}

export const MAX_LIMIT = 1000
export const DEFAULT_LIMIT = 100
const MAX_BUCKETS = 5000
const HISTORY_LIMIT = 500

const bad = (message: string) => new ApiError(400, 'bad_request', message)

/** Query helpers: each rejects a malformed value with a 400 that names the parameter. */
class Query {
  constructor(private readonly q: URLSearchParams) {}

  str(name: string): string | undefined {
    const all = this.q.getAll(name)
    if (all.length > 1) throw bad(`parameter "${name}" is given ${all.length} times`)
    const v = all[0]
    return v === undefined || v === '' ? undefined : v
  }

  time(name: 'from' | 'to'): number | undefined {
    const v = this.str(name)
    if (v === undefined) return undefined
    try {
      return parseReportTime(v, { end: name === 'to' })
    } catch (err) {
      throw bad(`parameter "${name}": ${(err as Error).message}; use an ISO date or time (2027-01-31, 2027-01-31T12:00:00Z), unix seconds, "now" or an age like 7d`)
    }
  }

  range(): { fromMs?: number; toMs?: number } {
    const fromMs = this.time('from')
    const toMs = this.time('to')
    if (fromMs !== undefined && toMs !== undefined && !(toMs > fromMs)) throw bad(`"to" (${new Date(toMs).toISOString()}) must be after "from" (${new Date(fromMs).toISOString()})`)
    return { fromMs, toMs }
  }

  limit(): number {
    const v = this.str('limit')
    if (v === undefined) return DEFAULT_LIMIT
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_LIMIT) throw bad(`parameter "limit" must be a whole number from 1 to ${MAX_LIMIT}, not "${v}"`)
    return Number(v)
  }

  order(): 'asc' | 'desc' {
    const v = this.str('order') ?? 'desc'
    if (v !== 'asc' && v !== 'desc') throw bad(`parameter "order" must be asc or desc, not "${v}"`)
    return v
  }

  cursor(): [number, number] | undefined {
    const v = this.str('cursor')
    if (v === undefined) return undefined
    const m = /^(\d{1,15})-(\d{1,9})$/.exec(v)
    if (!m) throw bad(`parameter "cursor" is not a cursor this API returned ("${v}")`)
    return [Number(m[1]), Number(m[2])]
  }

  address(name: string): string | undefined {
    const v = this.str(name)
    if (v === undefined) return undefined
    if (!isAddress(v)) throw bad(`parameter "${name}": "${v}" is not an Ethereum address (0x followed by 40 hex digits)`)
    return getAddress(v)
  }
}

interface Positioned {
  block: number
  logIndex: number
  time: string
}

/** Cursor pagination over items in chain order: the cursor is the position of the last item returned. */
export function paginate<T extends Positioned>(items: readonly T[], q: Query, range: { fromMs?: number; toMs?: number }): { items: T[]; nextCursor: string | null } {
  const limit = q.limit()
  const order = q.order()
  const cursor = q.cursor()
  const inRange = items.filter((x) => {
    const ms = Date.parse(x.time)
    return (range.fromMs === undefined || ms >= range.fromMs) && (range.toMs === undefined || ms < range.toMs)
  })
  const sorted = order === 'asc' ? inRange : [...inRange].reverse()
  const cmp = (x: T) => (x.block - cursor![0]) * 1e6 + (x.logIndex - cursor![1])
  const after = cursor ? sorted.filter((x) => (order === 'asc' ? cmp(x) > 0 : cmp(x) < 0)) : sorted
  const page = after.slice(0, limit)
  const last = page.at(-1)
  return { items: page, nextCursor: after.length > limit && last ? `${last.block}-${last.logIndex}` : null }
}

export interface ApiOptions {
  /** The reporter key that signs evidence bundles (absent: /api/evidence answers 503). */
  signer?: ErasureSigner
  /** A block explorer base URL (no trailing slash) for the UI's tx and block links. */
  explorer?: string
}

const unavailable = (message: string) => new ApiError(503, 'unavailable', message)

export class Api {
  private readonly reportCache = new Map<string, Promise<AuditReport>>()

  constructor(
    private readonly index: ChainIndex,
    private readonly opts: ApiOptions = {},
  ) {}

  /** Routes one GET under /api (path without the query). */
  async handle(path: string, params: URLSearchParams): Promise<ApiResponse> {
    const q = new Query(params)
    const ok = (json: unknown): ApiResponse => ({ status: 200, json })
    const idx = this.index
    const seg = path.split('/').slice(2) // ['', 'api', ...]
    const [head, ...rest] = seg
    const tail = rest.join('/')

    switch (head) {
      case 'status':
        if (tail) break
        return ok({ ...idx.status(), evidence: !!(this.opts.signer && idx.dataDir), explorer: this.opts.explorer ?? null } satisfies StatusView)
      case 'topics': {
        if (!tail) return ok({ topics: idx.topics() })
        let name: string
        try {
          name = decodeURIComponent(tail)
        } catch {
          throw bad(`"${tail}" is not a valid URL-encoded topic name`)
        }
        const topic = idx.topic(name)
        if (!topic && !idx.knowsTopic(name)) throw new ApiError(404, 'not_found', `no topic "${name}" in this deployment`)
        const history = idx.events({ topic: name }).reverse()
        return ok({ topic, members: idx.members(name), history: history.slice(0, HISTORY_LIMIT), historyTotal: history.length, sensitiveReports: [...idx.sensitive(name)].reverse() } satisfies TopicDetail)
      }
      case 'clients': {
        if (!tail || rest.length !== 1) break
        let raw = tail
        try {
          raw = decodeURIComponent(tail)
        } catch {
          /* reported below */
        }
        if (!isAddress(raw)) throw bad(`"${raw}" is not an Ethereum address (0x followed by 40 hex digits)`)
        const address = getAddress(raw)
        const history = idx.events({ client: address }).reverse()
        // The client's refused attempts from the journal (null: the server has no journal).
        const refused = idx.dataDir ? await clientRefusals(idx.dataDir, address, HISTORY_LIMIT) : null
        return ok({ address, rights: idx.rights(address), history: history.slice(0, HISTORY_LIMIT), historyTotal: history.length, refusals: refused?.refusals ?? null, refusalsTotal: refused?.total ?? 0 } satisfies ClientDetail)
      }
      case 'events': {
        if (tail) break
        const range = q.range()
        const typeParam = q.str('type')
        let types: Set<string> | undefined
        if (typeParam) {
          types = new Set(typeParam.split(',').map((t) => t.trim()).filter(Boolean))
          const unknown = [...types].filter((t) => !(EVENT_TYPES as readonly string[]).includes(t))
          if (unknown.length) throw bad(`parameter "type": unknown event type ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${EVENT_TYPES.join(', ')}`)
        }
        const events = idx.events({ topic: q.str('topic'), client: q.address('client'), types })
        const page = paginate(events, q, range)
        return ok({ events: page.items, nextCursor: page.nextCursor })
      }
      case 'bans': {
        if (tail) break
        const range = q.range()
        const who = q.address('client')
        const page = paginate(idx.bans().filter((b) => !who || b.client === who), q, range)
        return ok({ bans: page.items, nextCursor: page.nextCursor })
      }
      case 'denied': {
        if (tail) break
        const range = q.range()
        const page = paginate(idx.denied(), q, range)
        return ok({ denied: page.items, nextCursor: page.nextCursor })
      }
      case 'sensitive': {
        if (tail) break
        const range = q.range()
        const page = paginate(idx.sensitive(q.str('topic')), q, range)
        return ok({ sensitive: page.items, nextCursor: page.nextCursor })
      }
      case 'anchors': {
        if (tail) break
        const range = q.range()
        const status = q.str('status')
        if (status && !['verified', 'mismatch', 'unchecked'].includes(status)) throw bad(`parameter "status" must be verified, mismatch or unchecked, not "${status}"`)
        const page = paginate(idx.anchors().filter((a) => !status || a.status === status), q, range)
        return ok({ anchors: page.items, nextCursor: page.nextCursor })
      }
      case 'traffic': {
        if (tail) break
        const r = this.buckets(q)
        const source = q.str('source') ?? (idx.dataDir ? 'journal' : 'chain')
        if (source !== 'journal' && source !== 'chain') throw bad(`parameter "source" must be journal or chain, not "${source}"`)
        if (source === 'journal' && !idx.dataDir) throw unavailable("traffic from the journal needs the proxy's journal: start `flytrap audit serve` with --data-dir")
        const t = source === 'journal' ? await journalTraffic(idx.dataDir!, r) : chainTraffic(idx.denied(), idx.sensitive(), r)
        // The journal names every topic; whether it was ever registered is the index's to say.
        if (source === 'journal') for (const x of t.refusedTopics) if (!x.topic.startsWith('$')) x.registered = idx.knowsTopic(x.topic)
        return ok(t)
      }
      case 'activity': {
        if (tail) break
        const range = q.range()
        const events = idx.events()
        const toMs = range.toMs ?? Math.max(Date.now(), (events.length ? Date.parse(events.at(-1)!.time) : 0) + 1)
        const fromMs = range.fromMs ?? (events.length ? Date.parse(events[0]!.time) : toMs - 86_400_000)
        if (!(toMs > fromMs)) throw bad('"to" must be after "from"')
        const bucket = q.str('bucket') ?? (toMs - fromMs > 3 * 86_400_000 ? 'day' : 'hour')
        if (bucket !== 'hour' && bucket !== 'day') throw bad(`parameter "bucket" must be hour or day, not "${bucket}"`)
        const bucketMs = bucket === 'hour' ? 3_600_000 : 86_400_000
        if ((toMs - fromMs) / bucketMs > MAX_BUCKETS) throw bad(`the range holds more than ${MAX_BUCKETS} ${bucket}s: narrow it or use bucket=day`)
        return ok({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), bucket, buckets: idx.activity({ fromMs, toMs, bucketMs }) } satisfies ActivityView)
      }
      case 'report': {
        if (tail) break
        return this.report(q)
      }
      case 'evidence': {
        if (tail) break
        return this.evidence(q)
      }
    }
    throw new ApiError(404, 'not_found', `no such endpoint: ${path} (see /openapi.json)`)
  }

  /** The range and bucket of /api/traffic: defaults from the first event (or summary) to now, hourly up to 3 days. */
  private buckets(q: Query): { fromMs: number; toMs: number; bucketMs: number } {
    const range = q.range()
    const events = this.index.events()
    const toMs = range.toMs ?? Math.max(Date.now(), (events.length ? Date.parse(events.at(-1)!.time) : 0) + 1)
    const firstDenied = this.index.denied()[0]
    const starts = [events[0] && Date.parse(events[0].time), firstDenied && Date.parse(firstDenied.fromTime)].filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    const fromMs = range.fromMs ?? (starts.length ? Math.min(...starts) : toMs - 86_400_000)
    if (!(toMs > fromMs)) throw bad('"to" must be after "from"')
    const bucket = q.str('bucket') ?? (toMs - fromMs > 3 * 86_400_000 ? 'day' : 'hour')
    if (bucket !== 'hour' && bucket !== 'day') throw bad(`parameter "bucket" must be hour or day, not "${bucket}"`)
    const bucketMs = bucket === 'hour' ? 3_600_000 : 86_400_000
    if ((toMs - fromMs) / bucketMs > MAX_BUCKETS) throw bad(`the range holds more than ${MAX_BUCKETS} ${bucket}s: narrow it or use bucket=day`)
    return { fromMs, toMs, bucketMs }
  }

  private async report(q: Query): Promise<ApiResponse> {
    const range = q.range()
    const fromMs = range.fromMs ?? 0
    const last = this.index.events().at(-1)
    const toMs = range.toMs ?? Math.max(Date.now(), last ? Date.parse(last.time) : 0) + 1000
    if (!(toMs > fromMs)) throw bad('"to" must be after "from"')
    const format = q.str('format') ?? 'json'
    if (format !== 'json' && format !== 'csv') throw bad(`parameter "format" must be json or csv, not "${format}"`)
    const topic = q.str('topic')
    const clientAddress = q.address('client')
    const st = this.index.status()
    const key = JSON.stringify([st.block, fromMs, toMs, topic, clientAddress])
    let p = this.reportCache.get(key)
    if (!p) {
      p = buildReport({ client: this.index.client, from: fromMs, to: toMs, topic, clientAddress, dataDir: this.index.dataDir ?? undefined, deployBlock: st.deployBlock })
      this.reportCache.set(key, p)
      p.catch(() => this.reportCache.delete(key))
      while (this.reportCache.size > 20) this.reportCache.delete(this.reportCache.keys().next().value as string)
    }
    let report: AuditReport
    try {
      report = await p
    } catch (err) {
      if (err instanceof FlytrapError && err.exit === 2) throw bad(err.message)
      throw new ApiError(502, 'chain_error', `the report could not be built: ${(err as Error).message}`)
    }
    if (format === 'json') return { status: 200, json: report }
    const stamp = (ms: number) => new Date(ms).toISOString().replace(/[:.]/g, '').slice(0, 15)
    return {
      status: 200,
      text: toCsv(report.rows),
      headers: {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="flytrap-report-${stamp(fromMs)}-${stamp(toMs)}.csv"`,
      },
    }
  }

  /** A signed evidence bundle for the range/topic/client, as `flytrap audit export` writes it, as an attachment. */
  private async evidence(q: Query): Promise<ApiResponse> {
    const range = q.range()
    const topic = q.str('topic')
    const clientAddress = q.address('client')
    if (topic !== undefined) {
      const why = validateTopicFilter(topic)
      if (why !== null || topic.startsWith('$share/')) throw bad(`parameter "topic": "${topic}": ${why ?? 'a shared subscription is not a topic'}`)
    }
    if (topic !== undefined && clientAddress !== undefined) throw bad('a bundle is for one topic or one client: pass "topic" or "client", not both')
    const dataDir = this.index.dataDir
    if (!dataDir) throw unavailable("evidence bundles need the proxy's journal: start `flytrap audit serve` with --data-dir")
    const signer = this.opts.signer
    if (!signer) throw unavailable('evidence bundles are signed by the reporter key: start `flytrap audit serve` with --key <reporter key> (or FLYTRAP_KEY)')
    const st = this.index.status()
    const fromMs = range.fromMs ?? 0
    const last = this.index.events().at(-1)
    const toMs = range.toMs ?? Math.max(Date.now(), last ? Date.parse(last.time) : 0) + 1000
    if (!(toMs > fromMs)) throw bad('"to" must be after "from"')
    let text: string
    try {
      const { bundle } = await exportBundle({ client: this.index.client, chainId: st.chainId, deployBlock: st.deployBlock, dataDir, fromMs, toMs, topic, clientAddress, signer })
      text = `${canonicalJson(bundle)}\n`
    } catch (err) {
      if (err instanceof FlytrapError) {
        if (err.exit === 2) throw new ApiError(404, 'no_evidence', err.message)
        if (err.exit === 3) throw unavailable(err.message)
        if (err.exit === 7) throw new ApiError(409, 'journal_mismatch', err.message)
      }
      throw new ApiError(502, 'chain_error', `the bundle could not be built: ${(err as Error).message}`)
    }
    const stamp = (ms: number) => new Date(ms).toISOString().replace(/[:.]/g, '').slice(0, 15)
    const what = topic ? `-topic-${topic.replace(/[^A-Za-z0-9_-]+/g, '_')}` : clientAddress ? `-client-${clientAddress}` : ''
    return {
      status: 200,
      text,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'content-disposition': `attachment; filename="flytrap-evidence${what}-${stamp(fromMs)}-${stamp(toMs)}.json"`,
      },
    }
  }
}
