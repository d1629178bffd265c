/**
 * Plain SVG charts for the benchmark results (no dependency): the paper-style grouped bar chart of median
 * round trips per packet type and target, and the scale curve (PUBLISH → PUBACK and connect rate against
 * concurrent clients).
 */
import type { LatencyResult, Op, TargetName } from './latency.js'
import type { ScaleResult } from './scale.js'

const COLORS: Record<TargetName, string> = { direct: '#4e79a7', relay: '#9c9c9c', flytrap: '#e15759', 'flytrap-relaxed': '#f28e2b', 'flytrap-nojournal': '#76b7b2', 'flytrap-alldeliveries': '#b07aa1' }
const LABELS: Record<Op, string> = { connect: 'CONNECT', subscribe: 'SUBSCRIBE', publish: 'PUBLISH', session: 'session', publishSteady: 'PUBLISH (steady)' }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

function frame(width: number, height: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>
${body}
</svg>
`
}

/** Grouped bars: one group per (transport, op), one bar per target, median in ms with p90 whiskers. */
export function latencyChart(r: LatencyResult, ops: Op[] = ['connect', 'subscribe', 'publish', 'publishSteady']): string {
  const groups: { label: string; bars: { target: TargetName; p50: number; p90: number }[] }[] = []
  for (const [transport, byTarget] of Object.entries(r.latency)) {
    for (const op of ops) {
      const bars = (['direct', 'relay', 'flytrap'] as TargetName[]).flatMap((t) => (byTarget[t] ? [{ target: t, p50: byTarget[t]![op].p50 / 1000, p90: byTarget[t]![op].p90 / 1000 }] : []))
      groups.push({ label: `${LABELS[op]} ${transport.toUpperCase()}`, bars })
    }
  }
  const W = 80 + groups.length * 110
  const H = 380
  const top = 40
  const bottom = H - 70
  const max = Math.max(0.001, ...groups.flatMap((g) => g.bars.map((b) => b.p90))) * 1.1
  const y = (v: number) => bottom - (v / max) * (bottom - top)
  let body = ''
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4
    body += `<line x1="60" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="55" y="${y(v) + 4}" text-anchor="end">${v.toFixed(v < 1 ? 2 : 1)}</text>\n`
  }
  body += `<text x="16" y="${(top + bottom) / 2}" transform="rotate(-90 16 ${(top + bottom) / 2})" text-anchor="middle">median round trip, ms (whisker: p90)</text>\n`
  groups.forEach((g, gi) => {
    const x0 = 70 + gi * 110
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * 30
      body += `<rect x="${x}" y="${y(b.p50)}" width="26" height="${bottom - y(b.p50)}" fill="${COLORS[b.target]}"><title>${b.target}: p50 ${b.p50.toFixed(3)} ms, p90 ${b.p90.toFixed(3)} ms</title></rect>`
      body += `<line x1="${x + 13}" x2="${x + 13}" y1="${y(b.p50)}" y2="${y(b.p90)}" stroke="#333"/>\n`
    })
    body += `<text x="${x0 + 45}" y="${bottom + 16}" text-anchor="middle">${esc(g.label)}</text>\n`
  })
  ;(['direct', 'relay', 'flytrap'] as TargetName[]).forEach((t, i) => {
    body += `<rect x="${70 + i * 120}" y="${H - 30}" width="12" height="12" fill="${COLORS[t]}"/><text x="${88 + i * 120}" y="${H - 20}">${t === 'relay' ? 'TCP relay (HAProxy)' : t}</text>\n`
  })
  return frame(W, H, 'MQTT round trips: broker direct vs TCP relay vs FlyTrap', body)
}

/** Scale curve: PUBLISH → PUBACK p50/p99 (left axis) and connect rate (right axis) against clients (log x). */
export function scaleChart(r: ScaleResult): string {
  const W = 640
  const H = 380
  const left = 70
  const right = W - 70
  const top = 40
  const bottom = H - 60
  const levels = r.levels
  const xs = levels.map((l) => Math.log10(Math.max(1, l.clients)))
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)]
  const x = (v: number) => left + ((Math.log10(Math.max(1, v)) - xmin) / (xmax - xmin || 1)) * (right - left)
  const maxMs = Math.max(0.001, ...levels.map((l) => l.publish.p99 / 1000)) * 1.1
  const maxRate = Math.max(1, ...levels.map((l) => l.connectRate)) * 1.1
  const yMs = (v: number) => bottom - (v / maxMs) * (bottom - top)
  const yRate = (v: number) => bottom - (v / maxRate) * (bottom - top)
  const line = (pts: [number, number][], color: string, dash = '') =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${pts.map(([a, b]) => `${a},${b}`).join(' ')}"/>` +
    pts.map(([a, b]) => `<circle cx="${a}" cy="${b}" r="3" fill="${color}"/>`).join('')
  let body = `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`
  for (const l of levels) body += `<text x="${x(l.clients)}" y="${bottom + 16}" text-anchor="middle">${l.clients}</text>`
  body += `<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle">concurrent authenticated clients (log scale)</text>`
  for (let i = 0; i <= 4; i++) {
    body += `<text x="${left - 5}" y="${yMs((maxMs * i) / 4) + 4}" text-anchor="end">${((maxMs * i) / 4).toFixed(2)}</text>`
    body += `<text x="${right + 5}" y="${yRate((maxRate * i) / 4) + 4}">${Math.round((maxRate * i) / 4)}</text>`
  }
  body += `<text x="18" y="${(top + bottom) / 2}" transform="rotate(-90 18 ${(top + bottom) / 2})" text-anchor="middle">PUBLISH → PUBACK, ms</text>`
  body += `<text x="${W - 14}" y="${(top + bottom) / 2}" transform="rotate(90 ${W - 14} ${(top + bottom) / 2})" text-anchor="middle">new sessions per second</text>`
  body += line(levels.map((l) => [x(l.clients), yMs(l.publish.p50 / 1000)]), '#e15759')
  body += line(levels.map((l) => [x(l.clients), yMs(l.publish.p99 / 1000)]), '#e15759', '4 3')
  body += line(levels.map((l) => [x(l.clients), yRate(l.connectRate)]), '#4e79a7')
  body += `<text x="${left + 10}" y="${top + 10}" fill="#e15759">PUBLISH p50 (solid), p99 (dashed)</text><text x="${left + 10}" y="${top + 26}" fill="#4e79a7">connect rate</text>`
  return frame(W, H, 'FlyTrap under concurrency', body)
}
