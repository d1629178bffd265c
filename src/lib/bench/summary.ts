/**
 * `--summary markdown|junit`: a bench run's key results and gate verdicts for CI — a Markdown table (for
 * $GITHUB_STEP_SUMMARY) or JUnit XML, one testcase per threshold or baseline check, failures as <failure>.
 */
import { fmt, pct, type GateResult } from './gate.js'

export type SummaryFormat = 'markdown' | 'junit'

export interface SummaryInput {
  /** e.g. `flytrap bench latency`. */
  title: string
  /** Key results: [name, value, unit]. */
  results: [string, number | undefined, string][]
  gate: GateResult
  /** Wall time of the run (seconds). */
  seconds?: number
}

const mdCell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')

export function markdownSummary(s: SummaryInput): string {
  const lines = [`### ${mdCell(s.title)}${s.gate.ok ? ' — passed' : ' — FAILED'}`, '']
  if (s.seconds !== undefined) lines.push(`Run time: ${s.seconds.toFixed(1)} s`, '')
  const shown = s.results.filter(([, v]) => v !== undefined)
  if (shown.length) {
    lines.push('| metric | value |', '| --- | ---: |')
    for (const [name, v, unit] of shown) lines.push(`| ${mdCell(name)} | ${fmt(v!)}${unit ? ` ${mdCell(unit)}` : ''} |`)
    lines.push('')
  }
  if (s.gate.thresholds.length) {
    lines.push('| threshold | actual | verdict |', '| --- | ---: | --- |')
    for (const t of s.gate.thresholds) lines.push(`| \`${mdCell(t.expr)}\` | ${fmt(t.actual)} | ${t.ok ? '✅ ok' : '❌ fail'} |`)
    lines.push('')
  }
  if (s.gate.baseline) {
    lines.push(`Baseline \`${mdCell(s.gate.baseline.file)}\`, tolerance ${s.gate.baseline.tolerancePct} %:`, '', '| metric | better | baseline | now | change | verdict |', '| --- | --- | ---: | ---: | ---: | --- |')
    for (const c of s.gate.baseline.checks) lines.push(`| ${mdCell(c.metric)} | ${c.direction} | ${fmt(c.baseline)} | ${fmt(c.now)} | ${pct(c.changePct)} | ${c.ok ? '✅ ok' : '❌ regressed'} |`)
    lines.push('')
  }
  return lines.join('\n')
}

export const xmlEscape = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    // Characters XML 1.0 cannot carry at all (C0 controls but tab, LF, CR).
    .replace(/[^\t\n\r\u0020-\uFFFF]/gu, (c) => (c.codePointAt(0)! > 0xffff ? c : ''))

export function junitSummary(s: SummaryInput): string {
  const cases: { name: string; classname: string; failure?: string }[] = []
  for (const t of s.gate.thresholds) cases.push({ name: t.expr, classname: 'threshold', failure: t.ok ? undefined : `${t.expr}: actual ${fmt(t.actual)}` })
  for (const c of s.gate.baseline?.checks ?? [])
    cases.push({ name: c.metric, classname: 'baseline', failure: c.ok ? undefined : `${c.metric} regressed ${pct(c.changePct)} (baseline ${fmt(c.baseline)}, now ${fmt(c.now)}, ${c.direction} is better, tolerance ${s.gate.baseline!.tolerancePct} %)` })
  const failures = cases.filter((c) => c.failure).length
  const suite = xmlEscape(s.title)
  const time = s.seconds !== undefined ? ` time="${s.seconds.toFixed(3)}"` : ''
  const body = cases
    .map((c) => {
      const open = `    <testcase name="${xmlEscape(c.name)}" classname="${xmlEscape(`${s.title}.${c.classname}`)}"`
      return c.failure ? `${open}>\n      <failure message="${xmlEscape(c.failure)}">${xmlEscape(c.failure)}</failure>\n    </testcase>` : `${open}/>`
    })
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${suite}" tests="${cases.length}" failures="${failures}"${time}>\n  <testsuite name="${suite}" tests="${cases.length}" failures="${failures}" errors="0"${time}>\n${body}${body ? '\n' : ''}  </testsuite>\n</testsuites>\n`
}

export function renderSummary(format: SummaryFormat, s: SummaryInput): string {
  return format === 'junit' ? junitSummary(s) : markdownSummary(s)
}
