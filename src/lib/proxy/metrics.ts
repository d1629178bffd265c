/**
 * A small Prometheus registry (counters and gauges with labels) rendered in the text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/), and the HTTP endpoint serving it.
 * No dependency; the proxy's metric names are all defined in createProxyMetrics() below.
 *
 * Hot paths should bind a series once (`counter.labels({ direction: 'in' })`) and call inc() on it: that
 * skips the label lookup. Each metric holds at most `maxSeries` label combinations; increments of further
 * combinations are ignored (counted in `Registry.droppedSeries`) so a label fed by a bug cannot grow memory
 * without bound.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FlytrapError } from '../errors.js'

export type MetricType = 'counter' | 'gauge'
export type LabelValues<L extends string> = { readonly [K in L]: string | number }

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** One label combination of a metric. */
export interface Series {
  readonly labels: readonly string[]
  value: number
}

/** A series bound to its labels, for hot paths. */
export interface BoundCounter {
  inc(n?: number): void
  get(): number
}
export interface BoundGauge extends BoundCounter {
  set(v: number): void
  dec(n?: number): void
}

const NOOP_SERIES: Series = { labels: [], value: 0 }

abstract class Metric<L extends string> {
  abstract readonly type: MetricType
  protected readonly series = new Map<string, Series>()

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    private readonly registry: Registry,
  ) {
    if (!NAME_RE.test(name)) throw new RangeError(`invalid metric name ${JSON.stringify(name)}`)
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith('__')) throw new RangeError(`invalid label name ${JSON.stringify(l)} on ${name}`)
    }
    if (new Set(labelNames).size !== labelNames.length) throw new RangeError(`duplicate label name on ${name}`)
    if (labelNames.length === 0) this.series.set('', { labels: [], value: 0 })
  }

  /** The series for these labels (created on first use; missing labels are ""). */
  protected seriesFor(labels?: LabelValues<L>): Series {
    if (this.labelNames.length === 0) return this.series.get('')!
    const values = this.labelNames.map((n) => String(labels?.[n] ?? ''))
    const key = JSON.stringify(values)
    let s = this.series.get(key)
    if (!s) {
      if (this.series.size >= this.registry.maxSeries) {
        this.registry.droppedSeries++
        return NOOP_SERIES
      }
      s = { labels: values, value: 0 }
      this.series.set(key, s)
    }
    return s
  }

  /** Current value of a series (0 when it does not exist). */
  get(labels?: LabelValues<L>): number {
    if (this.labelNames.length === 0) return this.series.get('')!.value
    return this.series.get(JSON.stringify(this.labelNames.map((n) => String(labels?.[n] ?? ''))))?.value ?? 0
  }

  /** Drops every labelled series (an unlabelled metric goes back to 0). */
  reset(): void {
    this.series.clear()
    if (this.labelNames.length === 0) this.series.set('', { labels: [], value: 0 })
  }

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`
    for (const s of this.series.values()) {
      const labels = s.labels.length === 0 ? '' : `{${s.labels.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(',')}}`
      out += `${this.name}${labels} ${formatValue(s.value)}\n`
    }
    return out
  }
}

function split<L extends string>(a?: LabelValues<L> | number, b?: number): [LabelValues<L> | undefined, number | undefined] {
  return typeof a === 'number' ? [undefined, a] : [a, b]
}

function checkInc(name: string, n: number): void {
  if (!(n >= 0)) throw new RangeError(`${name}: a counter can only increase (got ${n})`)
}

export class Counter<L extends string = never> extends Metric<L> {
  readonly type = 'counter' as const

  /** inc(), inc(5), inc({ outcome: 'ok' }), inc({ outcome: 'ok' }, 5). */
  inc(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = split(labels, n)
    checkInc(this.name, by)
    this.seriesFor(l).value += by
  }

  labels(labels: LabelValues<L>): BoundCounter {
    const s = this.seriesFor(labels)
    const name = this.name
    return {
      inc(n = 1) {
        checkInc(name, n)
        s.value += n
      },
      get: () => s.value,
    }
  }
}

export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = 'gauge' as const

  /** set(3) or set({ label: 'x' }, 3). */
  set(labels: LabelValues<L> | number, v?: number): void {
    const [l, value] = split(labels, v)
    this.seriesFor(l).value = value ?? 0
  }

  inc(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = split(labels, n)
    this.seriesFor(l).value += by
  }

  dec(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = split(labels, n)
    this.seriesFor(l).value -= by
  }

  labels(labels: LabelValues<L>): BoundGauge {
    const s = this.seriesFor(labels)
    return {
      inc: (n = 1) => void (s.value += n),
      dec: (n = 1) => void (s.value -= n),
      set: (v) => void (s.value = v),
      get: () => s.value,
    }
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric<string>>()
  /** Increments refused because a metric already had maxSeries label combinations. */
  droppedSeries = 0

  constructor(readonly maxSeries = 10_000) {}

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.add(new Counter<L>(name, help, labelNames, this))
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.add(new Gauge<L>(name, help, labelNames, this))
  }

  get(name: string): Counter<string> | Gauge<string> | undefined {
    return this.metrics.get(name) as Counter<string> | Gauge<string> | undefined
  }

  private add<M extends Metric<string>>(m: M): M {
    if (this.metrics.has(m.name)) throw new RangeError(`metric ${m.name} is already registered`)
    this.metrics.set(m.name, m)
    return m
  }

  /** Every metric, in registration order, in text format 0.0.4. */
  render(): string {
    let out = ''
    for (const m of this.metrics.values()) out += m.render()
    return out
  }
}

export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

// ------------------------------------------------------------------ the proxy's metrics

export type DecisionKind = 'connect' | 'publish' | 'subscribe' | 'deliver' | 'will'
export type DecisionOutcome = 'allow' | 'deny'

/** Every metric the proxy exports, created on one registry. Names and labels are defined here only. */
export function createProxyMetrics(registry = new Registry()) {
  return {
    registry,
    /** outcome: a fixed code such as open, refused, banned, limit */
    connections: registry.counter('flytrap_connections_total', 'Client connections, by outcome.', ['outcome']),
    connectionsOpen: registry.gauge('flytrap_connections_open', 'Client connections currently open.'),
    /** kind: DecisionKind, outcome: DecisionOutcome, reason: a fixed reason code (never client input). */
    decisions: registry.counter('flytrap_decisions_total', 'Authorisation decisions, by packet kind, outcome and reason.', ['kind', 'outcome', 'reason']),
    /** source: local | chain */
    bans: registry.counter('flytrap_bans_total', 'Bans applied, by where they came from.', ['source']),
    bansActive: registry.gauge('flytrap_bans_active', 'Bans currently in force.'),
    synced: registry.gauge('flytrap_policy_synced', '1 once the policy has been read from the chain and is current, else 0.'),
    block: registry.gauge('flytrap_policy_block', 'Last block whose events are applied to the policy.'),
    syncLag: registry.gauge('flytrap_policy_sync_lag_seconds', 'Seconds since the policy was last confirmed current.'),
    banReportsDropped: registry.counter('flytrap_ban_reports_dropped_total', 'Ban reports dropped because the report queue was full.'),
    /** direction: in (client to proxy) | out (proxy to client) | up (to the broker) | down (from the broker) */
    packets: registry.counter('flytrap_packets_total', 'MQTT packets, by direction.', ['direction']),
    /** reason: a fixed error code */
    malformed: registry.counter('flytrap_malformed_packets_total', 'Malformed packets or PROXY headers, by reason.', ['reason']),
    /** broker: the configured broker URL */
    upstreamUp: registry.gauge('flytrap_upstream_up', '1 while a broker is healthy (new sessions may go to it), 0 while it is marked down.', ['broker']),
    upstreamSessions: registry.gauge('flytrap_upstream_sessions', 'Sessions open or opening on each broker.', ['broker']),
    /** code: the broker's CONNACK reason code in hex (3.1.1 return codes as their v5 codes) */
    upstreamRefusals: registry.counter('flytrap_upstream_refusals_total', "CONNECTs of the proxy a broker refused, by broker and reason code.", ['broker', 'code']),
    /** reason: connect (no TCP/TLS connection) | lost (the connection ended without a DISCONNECT) */
    upstreamFailures: registry.counter('flytrap_upstream_failures_total', 'Broker connection failures, by broker and kind.', ['broker', 'reason']),
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
  'flytrap_ban_reports_dropped_total',
  'flytrap_packets_total',
  'flytrap_malformed_packets_total',
  'flytrap_upstream_up',
  'flytrap_upstream_sessions',
  'flytrap_upstream_refusals_total',
  'flytrap_upstream_failures_total',
] as const

// ------------------------------------------------------------------ HTTP endpoint

export interface MetricsServer {
  address: { host: string; port: number }
  close(): Promise<void>
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
 * Serves GET (and HEAD) /metrics; everything else is 404. `extra` runs before each scrape to refresh
 * gauges computed on demand (sync lag, active bans); if it throws the scrape answers 500.
 */
export async function serveMetrics(hostPort: string, registry: Registry, extra?: () => void): Promise<MetricsServer> {
  const { host, port } = parseHostPort(hostPort)
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n')
      return
    }
    let body: string
    try {
      extra?.()
      body = registry.render()
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n')
      return
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : body)
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
