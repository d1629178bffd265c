/**
 * CI gates over a bench command's JSON result: `--threshold EXPR` expressions and `--baseline` regression
 * checks. Pure: parse and check before any stack starts, evaluate on the result afterwards.
 *
 * Grammar:  expr := path op number      path := segment ('.' segment)*   segment := [A-Za-z0-9_-]+
 *           op   := '<' | '<=' | '>' | '>=' | '==' | '!='                number := JS decimal (1e3, -0.5, 2)
 * A path names a metric of the command's `metrics` catalogue (short form, see `resolve`) or points into the
 * raw JSON result (its first segment a top-level key of the result; checked against the result after the run).
 */
import { usageError } from '../errors.js'

export type Comparison = '<' | '<=' | '>' | '>=' | '==' | '!='
export type Direction = 'lower' | 'higher'

/** The known metric names of one command (full dotted paths under `metrics`) and which way is better. */
export interface MetricCatalogue {
  /** e.g. `tcp.connect.addedMs.p50` → 'lower'. */
  metrics: Map<string, Direction>
  /** How a short name is completed: e.g. latency prefixes `tcp.` (the default transport). */
  defaultPrefix?: string
  /** Top-level keys of the raw result a path may start with. */
  rawRoots: string[]
}

export interface Threshold {
  expr: string
  /** Where the value is read, from the root of the JSON result (e.g. `metrics.tcp.connect.addedMs.p50`). */
  path: string
  op: Comparison
  value: number
  /** A catalogue metric (known before the run) or a raw path (checked after it). */
  kind: 'metric' | 'raw'
}

export interface ThresholdCheck {
  expr: string
  actual: number | null
  ok: boolean
}

const EXPR = /^\s*([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/

/** Full metric path for a name as the user wrote it, or undefined when it is no catalogue metric. */
export function resolveMetric(name: string, cat: MetricCatalogue): string | undefined {
  const bare = name.startsWith('metrics.') ? name.slice('metrics.'.length) : name
  if (cat.metrics.has(bare)) return bare
  if (cat.defaultPrefix && cat.metrics.has(cat.defaultPrefix + bare)) return cat.defaultPrefix + bare
  return undefined
}

/** Parses one expression against the catalogue; a usage error (exit 2) for bad syntax or an unknown path. */
export function parseThreshold(expr: string, cat: MetricCatalogue): Threshold {
  const m = EXPR.exec(expr)
  if (!m) throw usageError(`--threshold ${JSON.stringify(expr)}: not "<metric> <op> <number>" (op one of < <= > >= == !=)`, 'e.g. --threshold "connect.addedMs.p50<0.5"')
  const [, name, op, num] = m as unknown as [string, string, Comparison, string]
  const metric = resolveMetric(name, cat)
  if (metric) return { expr: expr.trim(), path: `metrics.${metric}`, op, value: Number(num), kind: 'metric' }
  if (!name.startsWith('metrics.') && cat.rawRoots.includes(name.split('.')[0]!)) return { expr: expr.trim(), path: name, op, value: Number(num), kind: 'raw' }
  const short = (k: string) => (cat.defaultPrefix && k.startsWith(cat.defaultPrefix) ? k.slice(cat.defaultPrefix.length) : k)
  const known = [...new Set([...cat.metrics.keys()].map(short))]
  const near = known.filter((k) => k.endsWith(name.split('.').pop()!)).slice(0, 4)
  throw usageError(
    `--threshold ${JSON.stringify(expr)}: unknown metric ${JSON.stringify(name)}`,
    `known metrics: ${(near.length ? near : known.slice(0, 12)).join(', ')}${near.length ? '' : ', …'} (or a raw path starting with ${cat.rawRoots.join('|')})`,
  )
}

export function parseThresholds(exprs: readonly string[] | undefined, cat: MetricCatalogue): Threshold[] {
  return (exprs ?? []).map((e) => parseThreshold(e, cat))
}

/** The number at a dotted path of a JSON value, or undefined. */
export function valueAt(root: unknown, path: string): number | undefined {
  let v: unknown = root
  for (const seg of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[seg]
  }
  return typeof v === 'number' ? v : undefined
}

export function compare(actual: number, op: Comparison, value: number): boolean {
  switch (op) {
    case '<':
      return actual < value
    case '<=':
      return actual <= value
    case '>':
      return actual > value
    case '>=':
      return actual >= value
    case '==':
      return actual === value
    case '!=':
      return actual !== value
  }
}

/**
 * Evaluates thresholds on a result. A raw path that holds no number is a usage error (it could only be checked
 * now); a catalogue metric the run did not produce (e.g. no relay) fails with `actual: null`.
 */
export function evaluateThresholds(ts: readonly Threshold[], result: unknown): ThresholdCheck[] {
  return ts.map((t) => {
    const actual = valueAt(result, t.path)
    if (actual === undefined && t.kind === 'raw') throw usageError(`--threshold ${JSON.stringify(t.expr)}: ${t.path} is not a number in the result`)
    if (actual === undefined || Number.isNaN(actual)) return { expr: t.expr, actual: null, ok: false }
    return { expr: t.expr, actual, ok: compare(actual, t.op, t.value) }
  })
}

/** "10%", "10", "0.1" (a fraction below 1 without %) → 0.1. */
export function parseTolerance(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(s)
  if (!m) throw usageError(`--tolerance ${JSON.stringify(s)}: not a percentage`, 'e.g. --tolerance 10%')
  const n = Number(m[1])
  return m[2] === '%' || n >= 1 ? n / 100 : n
}

export interface BaselineCheck {
  metric: string
  direction: Direction
  baseline: number
  now: number
  /** (now − baseline) / |baseline|, in percent. */
  changePct: number
  ok: boolean
}

/**
 * Compares every catalogue metric present in both results: a regression beyond `tolerance` (a fraction) in the
 * metric's bad direction fails. Added latencies can sit near zero, where a relative change means little, so a
 * lower-is-better metric also passes while it stays within `absSlack` of the baseline (default 0: off).
 */
export function compareBaseline(baseline: unknown, now: unknown, cat: MetricCatalogue, tolerance: number, absSlack = 0): BaselineCheck[] {
  const out: BaselineCheck[] = []
  for (const [metric, direction] of cat.metrics) {
    const b = valueAt(baseline, `metrics.${metric}`)
    const n = valueAt(now, `metrics.${metric}`)
    if (b === undefined || n === undefined || !Number.isFinite(b) || !Number.isFinite(n)) continue
    const changePct = b === 0 ? (n === 0 ? 0 : Infinity * Math.sign(n)) : ((n - b) / Math.abs(b)) * 100
    const limit = Math.abs(b) * tolerance
    const ok = direction === 'lower' ? n <= b + Math.max(limit, absSlack) : n >= b - limit
    out.push({ metric, direction, baseline: b, now: n, changePct, ok })
  }
  return out
}

/** A saved --json result: parsed, and shaped like this command's (it has a `metrics` object). */
export function checkBaseline(text: string, file: string, command: string): unknown {
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch (err) {
    throw usageError(`--baseline ${file}: not JSON (${(err as Error).message})`, `save one with \`flytrap ${command} --json > ${file}\``)
  }
  if (j === null || typeof j !== 'object' || typeof (j as { metrics?: unknown }).metrics !== 'object') {
    throw usageError(`--baseline ${file}: not a \`flytrap ${command} --json\` result (no metrics object)`, `save one with \`flytrap ${command} --json > ${file}\``)
  }
  return j
}
