/** Charts drawn as inline SVG, each with a text alternative (a data table in a <details>). */
import { h, s, table } from './dom.js'
import { toDate } from './format.js'
import type { ActivityBucket } from './api.js'

const PALETTE = ['#2563eb', '#db2777', '#16a34a', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#dc2626', '#4b5563', '#65a30d']

export function colour(i: number): string {
  return PALETTE[i % PALETTE.length] ?? '#4b5563'
}

function niceMax(n: number): number {
  if (n <= 5) return Math.max(1, n)
  const p = 10 ** Math.floor(Math.log10(n))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p
  return n
}

function legend(types: string[]): HTMLElement {
  return h(
    'ul',
    { class: 'legend', 'aria-hidden': 'true' },
    types.map((t, i) => h('li', null, h('span', { class: 'swatch', style: `background:${colour(i)}` }), t)),
  )
}

/** Stacked columns: one per time bucket, one colour per event type. */
export function activityChart(buckets: ActivityBucket[], bucket: 'hour' | 'day', title: string): HTMLElement {
  const types = [...new Set(buckets.flatMap((b) => Object.keys(b.counts)))].sort()
  const totals = buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0))
  const total = totals.reduce((a, n) => a + n, 0)
  if (buckets.length === 0 || total === 0) return h('p', { class: 'empty' }, 'No activity in this range.')
  const W = 720
  const H = 240
  const pad = { l: 40, r: 8, t: 10, b: 34 }
  const max = niceMax(Math.max(...totals))
  const iw = W - pad.l - pad.r
  const ih = H - pad.t - pad.b
  const bw = iw / buckets.length
  const barW = Math.max(1, Math.min(48, bw * 0.8))
  const y = (n: number) => pad.t + ih - (n / max) * ih
  const fmt = new Intl.DateTimeFormat(undefined, bucket === 'hour' ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric' })
  const labelEvery = Math.ceil(buckets.length / 8)

  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'activity-title', class: 'chart' },
    s('title', { id: 'activity-title' }, `${title}: ${total} events in ${buckets.length} ${bucket}s`),
    [0, 0.5, 1].map((f) => [
      s('line', { x1: pad.l, x2: W - pad.r, y1: y(max * f), y2: y(max * f), class: 'grid' }),
      s('text', { x: pad.l - 6, y: y(max * f) + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(max * f))),
    ]),
    buckets.map((b, i) => {
      let acc = 0
      const x = pad.l + i * bw
      const d = toDate(b.start)
      const when = d ? fmt.format(d) : String(b.start)
      return s(
        'g',
        null,
        types.map((t, ti) => {
          const n = b.counts[t] ?? 0
          if (!n) return null
          const r = s('rect', { x: x + (bw - barW) / 2, width: barW, y: y(acc + n), height: (n / max) * ih, fill: colour(ti) }, s('title', null, `${when}: ${n} ${t}`))
          acc += n
          return r
        }),
        i % labelEvery === 0 ? s('text', { x: x + bw / 2, y: H - pad.b + 16, 'text-anchor': 'middle', class: 'axis' }, when) : null,
      )
    }),
    s('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: 'baseline' }),
  )
  const rows = buckets
    .map((b, i) => ({ b, n: totals[i] ?? 0 }))
    .filter((x) => x.n > 0)
    .map(({ b, n }) => {
      const d = toDate(b.start)
      return [d ? d.toLocaleString() : String(b.start), String(n), Object.entries(b.counts).filter(([, c]) => c).map(([t, c]) => `${t} ${c}`).join(', ')]
    })
  return h('figure', { class: 'chart-fig' }, svg, legend(types), h('details', null, h('summary', null, 'Show the data'), table('Activity by ' + bucket, ['Start', 'Events', 'By type'], rows)))
}

/** Horizontal bars, largest first. */
export function barChart(data: { label: string; value: number }[], title: string, unit = ''): HTMLElement {
  const items = [...data].filter((d) => d.value > 0).sort((a, b) => b.value - a.value)
  if (items.length === 0) return h('p', { class: 'empty' }, 'Nothing to chart.')
  const W = 480
  const row = 30
  const labelW = 160
  const H = items.length * row + 8
  const max = Math.max(...items.map((d) => d.value))
  const id = `bar-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, class: 'chart' },
    s('title', { id }, `${title}: ${items.map((d) => `${d.label} ${d.value}`).join(', ')}`),
    items.map((d, i) => {
      const w = ((W - labelW - 50) * d.value) / max
      const yy = 4 + i * row
      return s(
        'g',
        null,
        s('text', { x: labelW - 8, y: yy + row / 2 + 4, 'text-anchor': 'end', class: 'axis' }, d.label.length > 24 ? `${d.label.slice(0, 23)}…` : d.label),
        s('rect', { x: labelW, y: yy + 4, width: Math.max(2, w), height: row - 8, fill: colour(i), rx: 2 }, s('title', null, `${d.label}: ${d.value}${unit}`)),
        s('text', { x: labelW + Math.max(2, w) + 6, y: yy + row / 2 + 4, class: 'axis' }, `${d.value}${unit}`),
      )
    }),
  )
  return h('figure', { class: 'chart-fig' }, svg, h('details', null, h('summary', null, 'Show the data'), table(title, ['Reason', 'Count'], items.map((d) => [d.label, String(d.value)]))))
}
