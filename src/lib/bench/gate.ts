/**
 * A bench command as a CI gate: everything checkable is checked before any stack starts (threshold syntax and
 * metric names, the baseline file), the verdicts are computed on the result afterwards.
 */
import { readFileSync } from 'node:fs'
import { usageError } from '../errors.js'
import { checkBaseline, compareBaseline, evaluateThresholds, parseThresholds, parseTolerance, type BaselineCheck, type MetricCatalogue, type Threshold, type ThresholdCheck } from './thresholds.js'

export interface GateOptions {
  thresholds?: readonly string[]
  baseline?: string
  tolerance?: string
  catalogue: MetricCatalogue
  /** `bench latency`, for messages. */
  command: string
}

export interface PreparedGate {
  thresholds: Threshold[]
  baseline?: { file: string; json: unknown }
  tolerance: number
  catalogue: MetricCatalogue
}

export interface GateResult {
  /** Every --threshold: the expression, the value the run produced (null: not produced) and the verdict. */
  thresholds: ThresholdCheck[]
  baseline?: { file: string; tolerancePct: number; checks: BaselineCheck[] }
  ok: boolean
}

export function prepareGate(o: GateOptions): PreparedGate {
  const thresholds = parseThresholds(o.thresholds, o.catalogue)
  const tolerance = parseTolerance(o.tolerance ?? '10%')
  if (!o.baseline) return { thresholds, tolerance, catalogue: o.catalogue }
  let text: string
  try {
    text = readFileSync(o.baseline, 'utf8')
  } catch (err) {
    throw usageError(`--baseline ${o.baseline}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, `save one with \`flytrap ${o.command} --json > ${o.baseline}\``)
  }
  return { thresholds, tolerance, catalogue: o.catalogue, baseline: { file: o.baseline, json: checkBaseline(text, o.baseline, o.command) } }
}

export function runGate(p: PreparedGate, result: unknown): GateResult {
  const thresholds = evaluateThresholds(p.thresholds, result)
  const baseline = p.baseline ? { file: p.baseline.file, tolerancePct: p.tolerance * 100, checks: compareBaseline(p.baseline.json, result, p.catalogue, p.tolerance) } : undefined
  if (baseline && baseline.checks.length === 0) throw usageError(`--baseline ${baseline.file}: it shares no metric with this run (another command, transport or levels?)`)
  const ok = thresholds.every((t) => t.ok) && (baseline?.checks.every((c) => c.ok) ?? true)
  return { thresholds, baseline, ok }
}

/** Whether the gate was asked for at all (no flags: no gate section in the output). */
export const gateUsed = (p: PreparedGate) => p.thresholds.length > 0 || p.baseline !== undefined

export const fmt = (v: number | null) => (v === null ? 'n/a' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3))
export const pct = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(1)} %` : v > 0 ? '+∞' : '−∞')

/** The one-line verdict for stderr / the exit: which checks failed. */
export function gateFailure(g: GateResult): string {
  const t = g.thresholds.filter((c) => !c.ok).map((c) => `${c.expr} (actual ${fmt(c.actual)})`)
  const b = (g.baseline?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.metric} ${pct(c.changePct)} vs baseline`)
  return `bench gate failed: ${[...t, ...b].join('; ')}`
}

/** The verdict tables for the human output (the command renders them). */
export function gateRows(g: GateResult): { title: string; head: string[]; rows: string[][] }[] {
  const out: { title: string; head: string[]; rows: string[][] }[] = []
  if (g.thresholds.length) out.push({ title: 'thresholds', head: ['threshold', 'actual', 'verdict'], rows: g.thresholds.map((t) => [t.expr, fmt(t.actual), t.ok ? 'ok' : 'FAIL']) })
  if (g.baseline)
    out.push({
      title: `against baseline ${g.baseline.file} (tolerance ${g.baseline.tolerancePct} %)`,
      head: ['metric', 'better', 'baseline', 'now', 'change', 'verdict'],
      rows: g.baseline.checks.map((c) => [c.metric, c.direction, fmt(c.baseline), fmt(c.now), pct(c.changePct), c.ok ? 'ok' : 'REGRESSED']),
    })
  return out
}
