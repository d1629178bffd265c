/**
 * Plain SVG charts for the benchmark results (no dependency): the paper-style grouped bar chart of median
 * round trips per packet type and target, and the scale curve (PUBLISH → PUBACK and connect rate against
 * concurrent clients).
 */
import type { LatencyResult, Op, TargetName } from './latency.js'
import type { ScaleResult } from './scale.js'

const COLORS: Record<TargetName, string> = { direct: '#4e79a7', relay: '#9c9c9c', 'node-relay': '#59a14f', flytrap: '#e15759', 'flytrap-relaxed': '#f28e2b', 'flytrap-nojournal': '#76b7b2', 'flytrap-alldeliveries': '#b07aa1' }
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

/** Ticks at 1-2-5 × 10^k from 0 to at least `max`, about `target` of them. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1]
  const raw = max / target
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag
  const n = Math.ceil(max / step - 1e-9)
  // Rounded through toPrecision so 0.1 + 0.2 never shows as 0.30000000000000004.
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)))
}

/** A tick label: as few decimals as the tick step needs. */
export function tickLabel(v: number, ticks: number[]): string {
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9))
  return v.toFixed(decimals)
}

/** Width of a 12 px sans-serif label, deliberately generous (wide glyphs), so laid-out labels never touch. */
export const textWidth = (s: string) => s.length * 7.5

/**
 * Legend entries (swatch + label) flowed left to right from `x0`, wrapping before `xMax`; each entry's width is
 * its measured label, so long names (the relay's) never run into the next.
 */
function legend(entries: { label: string; color: string; dash?: boolean }[], x0: number, y0: number, xMax: number): { svg: string; height: number } {
  let x = x0
  let y = y0
  let svg = ''
  for (const e of entries) {
    const w = 18 + textWidth(e.label)
    if (x > x0 && x + w > xMax) {
      x = x0
      y += 18
    }
    const swatch = e.dash ? `<line x1="${x}" x2="${x + 12}" y1="${y + 6}" y2="${y + 6}" stroke="${e.color}" stroke-width="2" stroke-dasharray="4 3"/>` : `<rect x="${x}" y="${y}" width="12" height="12" fill="${e.color}"/>`
    svg += `<g class="legend-entry">${swatch}<text x="${x + 18}" y="${y + 10}">${esc(e.label)}</text></g>\n`
    x += w + 16
  }
  return { svg, height: y - y0 + 18 }
}

const TARGET_LABEL: Record<TargetName, string> = {
  direct: 'broker direct',
  relay: 'TCP relay (HAProxy)',
  'node-relay': 'bare Node.js relay',
  flytrap: 'FlyTrap',
  'flytrap-relaxed': 'FlyTrap, relaxed journal sync',
  'flytrap-nojournal': 'FlyTrap, no journal',
  'flytrap-alldeliveries': 'FlyTrap, all deliveries journaled',
}
const BAR_ORDER: TargetName[] = ['direct', 'relay', 'node-relay', 'flytrap', 'flytrap-relaxed', 'flytrap-nojournal', 'flytrap-alldeliveries']

/** Grouped bars: one group per (transport, op), one bar per target, median in ms with p90 whiskers. */
export function latencyChart(r: LatencyResult, ops: Op[] = ['connect', 'subscribe', 'publish', 'publishSteady']): string {
  const groups: { label: string; bars: { target: TargetName; p50: number; p90: number }[] }[] = []
  for (const [transport, byTarget] of Object.entries(r.latency)) {
    for (const op of ops) {
      const bars = BAR_ORDER.flatMap((t) => (byTarget[t] ? [{ target: t, p50: byTarget[t]![op].p50 / 1000, p90: byTarget[t]![op].p90 / 1000 }] : []))
      groups.push({ label: `${LABELS[op]} ${transport.toUpperCase()}`, bars })
    }
  }
  const shown = BAR_ORDER.filter((t) => groups.some((g) => g.bars.some((b) => b.target === t)))
  const bar = 26
  const groupW = Math.max(110, ...groups.map((g) => Math.max(g.bars.length * (bar + 4) + 20, textWidth(g.label) + 10)))
  const W = Math.max(80 + groups.length * groupW, 480)
  const leg = legend(
    shown.map((t) => ({ label: TARGET_LABEL[t], color: COLORS[t] })),
    70,
    0,
    W - 10,
  )
  const top = 40
  const bottom = 310
  const H = bottom + 40 + leg.height + 10
  const ticks = niceTicks(Math.max(0.001, ...groups.flatMap((g) => g.bars.map((b) => b.p90))))
  const max = ticks.at(-1)!
  const y = (v: number) => bottom - (v / max) * (bottom - top)
  let body = ''
  for (const v of ticks) body += `<line x1="60" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text class="y-tick" x="55" y="${y(v) + 4}" text-anchor="end">${tickLabel(v, ticks)}</text>\n`
  body += `<text x="16" y="${(top + bottom) / 2}" transform="rotate(-90 16 ${(top + bottom) / 2})" text-anchor="middle">median round trip, ms (whisker: p90)</text>\n`
  groups.forEach((g, gi) => {
    const x0 = 70 + gi * groupW
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * (bar + 4)
      body += `<rect x="${x}" y="${y(b.p50)}" width="${bar}" height="${bottom - y(b.p50)}" fill="${COLORS[b.target]}"><title>${b.target}: p50 ${b.p50.toFixed(3)} ms, p90 ${b.p90.toFixed(3)} ms</title></rect>`
      body += `<line x1="${x + bar / 2}" x2="${x + bar / 2}" y1="${y(b.p50)}" y2="${y(b.p90)}" stroke="#333"/>\n`
    })
    body += `<text x="${x0 + (g.bars.length * (bar + 4)) / 2}" y="${bottom + 16}" text-anchor="middle">${esc(g.label)}</text>\n`
  })
  body += `<g transform="translate(0 ${bottom + 34})">${leg.svg}</g>`
  return frame(W, H, 'MQTT round trips: broker direct vs TCP relay vs FlyTrap', body)
}

/**
 * Scale curve against clients (log x, a tick and label at every level): PUBLISH → PUBACK p50/p99 on the left
 * axis, connect rate (FlyTrap's, and the broker's directly when measured) on its own right axis.
 */
export function scaleChart(r: ScaleResult): string {
  const W = 680
  const left = 70
  const right = W - 80
  const top = 40
  const bottom = 320
  const levels = r.levels
  const xs = levels.map((l) => Math.log10(Math.max(1, l.clients)))
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)]
  const x = (v: number) => left + ((Math.log10(Math.max(1, v)) - xmin) / (xmax - xmin || 1)) * (right - left)
  const msTicks = niceTicks(Math.max(0.001, ...levels.map((l) => l.publish.p99 / 1000)))
  const hasDirect = levels.some((l) => l.direct)
  const rateTicks = niceTicks(Math.max(1, ...levels.flatMap((l) => [l.connectRate, l.direct?.connectRate ?? 0])))
  const maxMs = msTicks.at(-1)!
  const maxRate = rateTicks.at(-1)!
  const yMs = (v: number) => bottom - (v / maxMs) * (bottom - top)
  const yRate = (v: number) => bottom - (v / maxRate) * (bottom - top)
  const line = (pts: [number, number][], color: string, dash = '') =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${pts.map(([a, b]) => `${a},${b}`).join(' ')}"/>` +
    pts.map(([a, b]) => `<circle cx="${a}" cy="${b}" r="3" fill="${color}"/>`).join('')
  let body = `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/><line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#333"/><line x1="${right}" x2="${right}" y1="${top}" y2="${bottom}" stroke="#4e79a7"/>`
  for (const l of levels) body += `<line x1="${x(l.clients)}" x2="${x(l.clients)}" y1="${bottom}" y2="${bottom + 5}" stroke="#333"/><text class="x-tick" x="${x(l.clients)}" y="${bottom + 18}" text-anchor="middle">${l.clients}</text>`
  body += `<text x="${(left + right) / 2}" y="${bottom + 38}" text-anchor="middle">concurrent authenticated clients (log scale)</text>`
  for (const v of msTicks) body += `<line x1="${left}" x2="${right}" y1="${yMs(v)}" y2="${yMs(v)}" stroke="#eee"/><text class="y-tick" x="${left - 5}" y="${yMs(v) + 4}" text-anchor="end">${tickLabel(v, msTicks)}</text>`
  for (const v of rateTicks) body += `<line x1="${right}" x2="${right + 5}" y1="${yRate(v)}" y2="${yRate(v)}" stroke="#4e79a7"/><text class="y2-tick" x="${right + 8}" y="${yRate(v) + 4}" fill="#4e79a7">${tickLabel(v, rateTicks)}</text>`
  body += `<text x="18" y="${(top + bottom) / 2}" transform="rotate(-90 18 ${(top + bottom) / 2})" text-anchor="middle">PUBLISH → PUBACK, ms</text>`
  body += `<text x="${W - 14}" y="${(top + bottom) / 2}" transform="rotate(90 ${W - 14} ${(top + bottom) / 2})" text-anchor="middle" fill="#4e79a7">new sessions per second</text>`
  body += line(levels.map((l) => [x(l.clients), yMs(l.publish.p50 / 1000)]), '#e15759')
  body += line(levels.map((l) => [x(l.clients), yMs(l.publish.p99 / 1000)]), '#e15759', '4 3')
  body += line(levels.map((l) => [x(l.clients), yRate(l.connectRate)]), '#4e79a7')
  const direct = levels.filter((l) => l.direct)
  if (hasDirect) body += line(direct.map((l) => [x(l.clients), yRate(l.direct!.connectRate)]), '#59a14f', '6 3')
  const leg = legend(
    [
      { label: 'PUBLISH p50', color: '#e15759' },
      { label: 'PUBLISH p99', color: '#e15759', dash: true },
      { label: 'connect rate, FlyTrap', color: '#4e79a7' },
      ...(hasDirect ? [{ label: 'connect rate, broker direct', color: '#59a14f', dash: true }] : []),
    ],
    left,
    0,
    W - 10,
  )
  body += `<g transform="translate(0 ${bottom + 52})">${leg.svg}</g>`
  return frame(W, bottom + 52 + leg.height + 10, 'FlyTrap under concurrency', body)
}
