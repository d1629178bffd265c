/**
 * The small, stable `metrics` objects of the bench results, which `--threshold` and `--baseline` name, and
 * their catalogues (every name and which way is better). Latency metrics are in milliseconds or plain ratios,
 * per transport (`tcp.…`, `tls.…`; a name without a transport means tcp); scale metrics per level
 * (`<clients>.…`). Renaming one breaks users' CI gates: add, never rename.
 */
import type { LatencyResult } from './latency.js'
import type { RevokeBenchResult } from './revoke.js'
import type { ScaleResult } from './scale.js'
import type { Direction, MetricCatalogue } from './thresholds.js'

export interface LatencyMetrics {
  connect: { addedMs: { p50: number; p90: number }; flytrapMs: { p50: number }; addedOverRelayMs?: number; addedOverNodeRelayMs?: number }
  publish: { addedMs: { p50: number } }
  session: { addedMs: { p50: number } }
  publishSteady: { addedMs: { p50: number; p90: number }; addedOverRelayMs?: number; addedRatioToRelay?: number }
  throughput?: { flytrap: number; direct: number; relay?: number; ratioToDirect: number; ratioToRelay?: number }
  journal?: { strictShare?: number; strictAddedMs?: number }
}

/** name (under a transport) → direction; the catalogue every check is validated against. */
const LATENCY: Record<string, Direction> = {
  'connect.addedMs.p50': 'lower',
  'connect.addedMs.p90': 'lower',
  'connect.flytrapMs.p50': 'lower',
  'connect.addedOverRelayMs': 'lower',
  'connect.addedOverNodeRelayMs': 'lower',
  'publish.addedMs.p50': 'lower',
  'session.addedMs.p50': 'lower',
  'publishSteady.addedMs.p50': 'lower',
  'publishSteady.addedMs.p90': 'lower',
  'publishSteady.addedOverRelayMs': 'lower',
  'publishSteady.addedRatioToRelay': 'lower',
  'throughput.flytrap': 'higher',
  'throughput.direct': 'higher',
  'throughput.relay': 'higher',
  'throughput.ratioToDirect': 'higher',
  'throughput.ratioToRelay': 'higher',
  'journal.strictShare': 'higher',
  'journal.strictAddedMs': 'lower',
}

const LATENCY_ROOTS = ['count', 'warmup', 'latency', 'throughput', 'deliveryThroughput', 'overhead', 'journalSync', 'machine']

export function latencyCatalogue(): MetricCatalogue {
  const metrics = new Map<string, Direction>()
  for (const t of ['tcp', 'tls']) for (const [k, d] of Object.entries(LATENCY)) metrics.set(`${t}.${k}`, d)
  return { metrics, defaultPrefix: 'tcp.', rawRoots: LATENCY_ROOTS }
}

/** Per transport with direct and FlyTrap measured: FlyTrap minus direct (and over the relay), in ms. */
export function latencyMetrics(r: LatencyResult): Record<string, LatencyMetrics> {
  const out: Record<string, LatencyMetrics> = {}
  for (const [transport, lat] of Object.entries(r.latency)) {
    const d = lat.direct
    const f = lat.flytrap
    if (!d || !f) continue
    const rl = lat.relay
    const ms = (us: number) => us / 1000
    const added = (op: 'connect' | 'publish' | 'session' | 'publishSteady', q: 'p50' | 'p90') => ms(f[op][q] - d[op][q])
    const relayAdded = (op: 'connect' | 'publishSteady') => (rl ? ms(rl[op].p50 - d[op].p50) : undefined)
    const m: LatencyMetrics = {
      connect: { addedMs: { p50: added('connect', 'p50'), p90: added('connect', 'p90') }, flytrapMs: { p50: ms(f.connect.p50) } },
      publish: { addedMs: { p50: added('publish', 'p50') } },
      session: { addedMs: { p50: added('session', 'p50') } },
      publishSteady: { addedMs: { p50: added('publishSteady', 'p50'), p90: added('publishSteady', 'p90') } },
    }
    const rc = relayAdded('connect')
    if (rc !== undefined) m.connect.addedOverRelayMs = m.connect.addedMs.p50 - rc
    const nr = lat['node-relay']
    if (nr) m.connect.addedOverNodeRelayMs = m.connect.addedMs.p50 - ms(nr.connect.p50 - d.connect.p50)
    const rs = relayAdded('publishSteady')
    if (rs !== undefined) {
      m.publishSteady.addedOverRelayMs = m.publishSteady.addedMs.p50 - rs
      // Only meaningful when the relay adds something measurable (a ratio over ~0 is noise).
      if (rs > 0.001) m.publishSteady.addedRatioToRelay = m.publishSteady.addedMs.p50 / rs
    }
    const thr = r.throughput[transport]
    if (thr?.flytrap && thr.direct) {
      m.throughput = { flytrap: thr.flytrap, direct: thr.direct, ratioToDirect: thr.flytrap / thr.direct }
      if (thr.relay) Object.assign(m.throughput, { relay: thr.relay, ratioToRelay: thr.flytrap / thr.relay })
    }
    const j = r.journalSync[transport]
    if (j) m.journal = { strictShare: j.strictThroughputShare, strictAddedMs: j.strictAddedUs !== undefined ? ms(j.strictAddedUs) : undefined }
    out[transport] = m
  }
  return out
}

export interface ScaleLevelMetrics {
  connectRate: number
  /** FlyTrap's connect rate over the direct broker's, same generator and level (when measured). */
  connectRateRatio?: number
  directConnectRate?: number
  publish: { p50Ms: number; p99Ms: number; directP50Ms?: number }
  /** proxyHeapKiBPerSession: the proxies' V8 heap after GC per session (bench scale's heap probe), when read. */
  memory: { proxyKiBPerSession: number; brokerKiBPerSession: number; proxyHeapKiBPerSession?: number }
}

const SCALE: Record<string, Direction> = {
  connectRate: 'higher',
  connectRateRatio: 'higher',
  directConnectRate: 'higher',
  'publish.p50Ms': 'lower',
  'publish.p99Ms': 'lower',
  'publish.directP50Ms': 'lower',
  'memory.proxyKiBPerSession': 'lower',
  'memory.brokerKiBPerSession': 'lower',
  'memory.proxyHeapKiBPerSession': 'lower',
}

export function scaleCatalogue(levels: readonly number[]): MetricCatalogue {
  const metrics = new Map<string, Direction>()
  for (const l of levels) for (const [k, d] of Object.entries(SCALE)) metrics.set(`${l}.${k}`, d)
  return { metrics, rawRoots: ['workers', 'sources', 'levels', 'proxyWorkers'] }
}

export function scaleMetrics(r: ScaleResult): Record<string, ScaleLevelMetrics> {
  const out: Record<string, ScaleLevelMetrics> = {}
  for (const l of r.levels) {
    const m: ScaleLevelMetrics = {
      connectRate: l.connectRate,
      publish: { p50Ms: l.publish.p50 / 1000, p99Ms: l.publish.p99 / 1000 },
      memory: { proxyKiBPerSession: l.memory.proxyKiBPerSession, brokerKiBPerSession: l.memory.brokerKiBPerSession },
    }
    if (l.memory.proxyHeapKiBPerSession !== undefined) m.memory.proxyHeapKiBPerSession = l.memory.proxyHeapKiBPerSession
    if (l.direct) {
      m.directConnectRate = l.direct.connectRate
      m.publish.directP50Ms = l.direct.publish.p50 / 1000
      if (l.direct.connectRate > 0) m.connectRateRatio = l.connectRate / l.direct.connectRate
    }
    out[String(l.clients)] = m
  }
  return out
}

/** `bench revoke`: per mode, ms from the revoke transaction to the client's DISCONNECT. */
export interface RevokeModeMetrics {
  p50Ms: number
  p95Ms: number
  maxMs: number
}
export interface RevokeMetrics {
  subscription?: RevokeModeMetrics
  polling?: RevokeModeMetrics
  /** polling p50 / subscription p50 (both measured). */
  speedupP50?: number
}

export function revokeCatalogue(): MetricCatalogue {
  const metrics = new Map<string, Direction>()
  for (const m of ['subscription', 'polling']) for (const k of ['p50Ms', 'p95Ms', 'maxMs']) metrics.set(`${m}.${k}`, 'lower')
  metrics.set('speedupP50', 'higher')
  return { metrics, rawRoots: ['samples', 'pollIntervalMs', 'blockTimeSec', 'modes'] }
}

export function revokeMetrics(r: RevokeBenchResult): RevokeMetrics {
  const out: RevokeMetrics = {}
  for (const m of ['subscription', 'polling'] as const) {
    const s = r.modes[m]
    if (s) out[m] = { p50Ms: s.p50, p95Ms: s.p95, maxMs: s.max }
  }
  if (out.subscription && out.polling && out.subscription.p50Ms > 0) out.speedupP50 = out.polling.p50Ms / out.subscription.p50Ms
  return out
}
