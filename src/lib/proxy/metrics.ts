/**
 * The proxy's Prometheus metrics, on prom-client (text exposition 0.0.4), and the HTTP listener of
 * `--metrics` (/metrics, /healthz, /readyz).
 *
 * Hot paths bind a series once (`counter.labels(...)`, kept) and call inc()/observe() on it: no label lookup
 * and no allocation per packet. Every label value is a fixed code or a configured broker URL, never client
 * input, so the number of series is bounded by the code. Gauges that are cheap to compute at scrape time
 * (sync lag, active bans, upstream states) are refreshed by `refresh` just before each collection.
 *
 * With --workers N, each worker's registry is collected as JSON over IPC and summed by the primary
 * (prom-client's AggregatorRegistry.aggregate); `aggregator` on a gauge says how workers combine.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import { FlytrapError } from '../errors.js'

export { Registry }
export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

export type DecisionKind = 'connect' | 'publish' | 'subscribe' | 'deliver' | 'will'
export type DecisionOutcome = 'allow' | 'deny'

/** CONNECT (accept → CONNACK) and broker CONNACK latencies: sub-millisecond on loopback to seconds on a slow chain of TLS. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** A policy decision is a trie walk: microseconds. */
const DECISION_BUCKETS = [0.000_001, 0.000_0025, 0.000_005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01]

/** Every metric the proxy exports, on its own registry. Names and labels are defined here only. */
export function createProxyMetrics(registry = new Registry()) {
  const r = [registry]
  const m = {
    registry,
    /** Called before each collection to refresh the computed gauges (set by startProxy). */
    refresh: (() => {}) as () => void,
    /** outcome: open, limit */
    connections: new Counter({ name: 'flytrap_connections_total', help: 'Client connections, by outcome.', labelNames: ['outcome'] as const, registers: r }),
    connectionsOpen: new Gauge({ name: 'flytrap_connections_open', help: 'Client connections currently open.', registers: r }),
    /** kind: DecisionKind, outcome: DecisionOutcome, reason: a fixed reason code (never client input). */
    decisions: new Counter({ name: 'flytrap_decisions_total', help: 'Authorisation decisions, by packet kind, outcome and reason.', labelNames: ['kind', 'outcome', 'reason'] as const, registers: r }),
    /** source: local | chain */
    bans: new Counter({ name: 'flytrap_bans_total', help: 'Bans applied, by where they came from.', labelNames: ['source'] as const, registers: r }),
    // Each worker holds every ban of the proxy (they share them): the cluster's value is the largest, not the sum.
    bansActive: new Gauge({ name: 'flytrap_bans_active', help: 'Bans currently in force.', registers: r, aggregator: 'max' }),
    synced: new Gauge({ name: 'flytrap_policy_synced', help: '1 once the policy has been read from the chain and is current, else 0.', registers: r, aggregator: 'min' }),
    block: new Gauge({ name: 'flytrap_policy_block', help: 'Last block whose events are applied to the policy.', registers: r, aggregator: 'min' }),
    syncLag: new Gauge({ name: 'flytrap_policy_sync_lag_seconds', help: 'Seconds since the policy was last confirmed current.', registers: r, aggregator: 'max' }),
    syncLagBlocks: new Gauge({ name: 'flytrap_policy_sync_lag_blocks', help: 'Blocks between the chain head last seen and the block the policy is consistent with.', registers: r, aggregator: 'max' }),
    banReportsDropped: new Counter({ name: 'flytrap_ban_reports_dropped_total', help: 'Ban reports dropped because the report queue was full.', registers: r }),
    /** direction: in (client to proxy) | out (proxy to client) | up (to the broker) | down (from the broker) */
    packets: new Counter({ name: 'flytrap_packets_total', help: 'MQTT packets, by direction.', labelNames: ['direction'] as const, registers: r }),
    /** reason: a fixed error code */
    malformed: new Counter({ name: 'flytrap_malformed_packets_total', help: 'Malformed packets or PROXY headers, by reason.', labelNames: ['reason'] as const, registers: r }),
    /** broker: the configured broker URL */
    upstreamUp: new Gauge({ name: 'flytrap_upstream_up', help: '1 while a broker is healthy (new sessions may go to it), 0 while it is marked down.', labelNames: ['broker'] as const, registers: r, aggregator: 'min' }),
    upstreamSessions: new Gauge({ name: 'flytrap_upstream_sessions', help: 'Sessions open or opening on each broker.', labelNames: ['broker'] as const, registers: r }),
    /** code: the broker's CONNACK reason code in hex (3.1.1 return codes as their v5 codes) */
    upstreamRefusals: new Counter({ name: 'flytrap_upstream_refusals_total', help: 'CONNECTs of the proxy a broker refused, by broker and reason code.', labelNames: ['broker', 'code'] as const, registers: r }),
    /** reason: connect (no TCP/TLS connection) | lost (the connection ended without a DISCONNECT) */
    upstreamFailures: new Counter({ name: 'flytrap_upstream_failures_total', help: 'Broker connection failures, by broker and kind.', labelNames: ['broker', 'reason'] as const, registers: r }),
    connectSeconds: new Histogram({ name: 'flytrap_connect_duration_seconds', help: 'From an accepted client connection to the CONNACK that opens its session (credential check and broker CONNACK included).', buckets: LATENCY_BUCKETS, registers: r }),
    /** kind: publish | subscribe | deliver (the policy decision itself; the journal's wait is not in it) */
    decisionSeconds: new Histogram({ name: 'flytrap_decision_duration_seconds', help: 'Time the policy takes to decide a PUBLISH, SUBSCRIBE filter or delivery.', labelNames: ['kind'] as const, buckets: DECISION_BUCKETS, registers: r }),
    upstreamConnackSeconds: new Histogram({ name: 'flytrap_upstream_connack_duration_seconds', help: "From the proxy's CONNECT written to a broker to that broker's CONNACK, by broker.", labelNames: ['broker'] as const, buckets: LATENCY_BUCKETS, registers: r }),
  }
  // process_* and nodejs_* series (CPU, memory, event loop lag, GC, handles).
  collectDefaultMetrics({ register: registry })
  return m
}

/**
 * Decisions counted on the packet path without prom-client's per-call label hashing: one plain slot per
 * (kind, outcome, reason), found through two Map lookups (no string built), pushed into
 * flytrap_decisions_total when the registry is collected.
 */
export class DecisionTally {
  private readonly slots = new Map<string, Map<string, { n: number; pushed: number; labels: { kind: string; outcome: DecisionOutcome; reason: string } }>[]>()
  /** One decision in DECISION_SAMPLE has its policy latency measured. */
  static readonly SAMPLE = 64
  private tick = 0

  constructor(private readonly counter: ProxyMetrics['decisions']) {}

  count(kind: string, allowed: boolean, reason: string): void {
    let byOutcome = this.slots.get(kind)
    if (!byOutcome) this.slots.set(kind, (byOutcome = [new Map(), new Map()]))
    const byReason = byOutcome[allowed ? 0 : 1]!
    const slot = byReason.get(reason)
    if (slot) slot.n++
    else byReason.set(reason, { n: 1, pushed: 0, labels: { kind, outcome: allowed ? 'allow' : 'deny', reason } })
  }

  /** True for one call in SAMPLE: the caller times that decision. */
  sample(): boolean {
    if (++this.tick < DecisionTally.SAMPLE) return false
    this.tick = 0
    return true
  }

  /** Moves the counts into the prom-client counter (called before a collection). */
  flush(): void {
    for (const byOutcome of this.slots.values()) {
      for (const byReason of byOutcome) {
        for (const s of byReason.values()) {
          if (s.n > s.pushed) this.counter.inc(s.labels, s.n - s.pushed)
          s.pushed = s.n
        }
      }
    }
  }
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>

export const PROXY_METRIC_NAMES = [
  'flytrap_connections_total',
  'flytrap_connections_open',
  'flytrap_decisions_total',
  'flytrap_bans_total',
  'flytrap_bans_active',
  'flytrap_policy_synced',
  'flytrap_policy_block',
  'flytrap_policy_sync_lag_seconds',
  'flytrap_policy_sync_lag_blocks',
  'flytrap_ban_reports_dropped_total',
  'flytrap_packets_total',
  'flytrap_malformed_packets_total',
  'flytrap_upstream_up',
  'flytrap_upstream_sessions',
  'flytrap_upstream_refusals_total',
  'flytrap_upstream_failures_total',
  'flytrap_connect_duration_seconds',
  'flytrap_decision_duration_seconds',
  'flytrap_upstream_connack_duration_seconds',
] as const

/** The value of one series now (0 when it has none yet), for tests and status output. */
export async function valueOf(metric: { get(): Promise<MetricObjectWithValues<MetricValue<string>>> | MetricObjectWithValues<MetricValue<string>> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get()
  const want = Object.entries(labels)
  const hit = values.find((v) => want.every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x) && Object.keys(v.labels).length === want.length)
  return hit?.value ?? 0
}

/** One process's metrics as text. */
export async function scrapeText(m: ProxyMetrics): Promise<string> {
  m.refresh()
  return m.registry.metrics()
}

/** One process's metrics as JSON (what a cluster worker sends the primary). */
export async function scrapeJson(m: ProxyMetrics): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
  m.refresh()
  return m.registry.getMetricsAsJSON()
}

/** Several workers' JSON metrics as one exposition: counters and histograms summed, gauges by their aggregator. */
export async function aggregateText(perWorker: MetricObjectWithValues<MetricValue<string>>[][]): Promise<string> {
  return AggregatorRegistry.aggregate(perWorker).metrics()
}

// ------------------------------------------------------------------ HTTP endpoint

export interface MetricsServer {
  address: { host: string; port: number }
  close(): Promise<void>
}

/** What /readyz answers: ready when the policy is synced and a broker is reachable. */
export interface Readiness {
  ready: boolean
  checks: { policySynced: boolean; brokerUp: boolean }
}

export interface MetricsHandlers {
  /** The exposition text (one process's, or the cluster's aggregate). */
  metrics(): Promise<string>
  readiness(): Promise<Readiness>
}

/** "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0" (0 picks a free port). */
export function parseHostPort(hostPort: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(hostPort) ?? /^([^:[\]]+):([0-9]{1,5})$/.exec(hostPort)
  if (!m || Number(m[2]) > 65535) {
    throw new FlytrapError(`invalid listen address ${JSON.stringify(hostPort)}`, { exit: 'usage', suggestions: ['use host:port, e.g. 127.0.0.1:9464 or [::1]:9464'] })
  }
  return { host: m[1]!, port: Number(m[2]) }
}

/**
 * Serves GET (and HEAD) /metrics, /healthz (the process answers: 200) and /readyz (200 when ready, else 503,
 * with the checks as JSON); everything else is 404. A collection that fails answers 500.
 */
export async function serveMetrics(hostPort: string, h: MetricsHandlers): Promise<MetricsServer> {
  const { host, port } = parseHostPort(hostPort)
  const send = (res: import('node:http').ServerResponse, head: boolean, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(head ? undefined : body)
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    const head = req.method === 'HEAD'
    if (req.method !== 'GET' && !head) return send(res, head, 405, 'text/plain; charset=utf-8', 'method not allowed\n')
    if (path === '/healthz') return send(res, head, 200, 'application/json', '{"alive":true}\n')
    if (path === '/readyz') {
      h.readiness().then(
        (r) => send(res, head, r.ready ? 200 : 503, 'application/json', JSON.stringify(r) + '\n'),
        () => send(res, head, 503, 'application/json', '{"ready":false}\n'),
      )
      return
    }
    if (path !== '/metrics') return send(res, head, 404, 'text/plain; charset=utf-8', 'not found\n')
    h.metrics().then(
      (body) => send(res, head, 200, CONTENT_TYPE, body),
      () => send(res, head, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n'),
    )
  })
  // A scrape endpoint needs little: bound what a misbehaving client can hold.
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  server.keepAliveTimeout = 5_000
  server.maxConnections = 64
  server.on('clientError', (_err, socket) => socket.destroy())

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new FlytrapError(`cannot serve metrics on ${hostPort}: ${err.code ?? err.message}`, { exit: 'config', cause: err }))
    })
    server.listen(port, host, () => resolve())
  })
  server.on('error', () => {}) // after listen, errors concern single connections
  const addr = server.address() as AddressInfo
  return {
    address: { host: addr.address, port: addr.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
