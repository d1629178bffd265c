/**
 * Charts: time columns as inline SVG, totals as HTML bars, each with a legend and a text alternative (a data
 * table in a <details>). Colours come from the Okabe–Ito palette (distinguishable with the common colour-vision
 * deficiencies); a chart never shows more series than it has colours, so no colour repeats: refusal reasons
 * beyond the first four are summed as "other reasons".
 */
import { h, s, table, type Child } from './dom.js'
import { toDate, utc } from './format.js'

/** Accesses, sensitive deliveries, then refusal reasons (most frequent first), then "other reasons". */
export const COLOURS = {
  accesses: '#0072B2', // blue
  sensitive: '#009E73', // bluish green
  reasons: ['#D55E00', '#E69F00', '#CC79A7', '#56B4E9'], // vermillion, orange, reddish purple, sky blue
  other: '#6E6E6E', // grey
} as const

export interface Series {
  label: string
  colour: string
}

export interface ColumnBucket {
  start: string
  /** One value per series, in the series' order. */
  values: number[]
}

function niceMax(n: number): number {
  if (n <= 10) return Math.max(2, n + (n % 2)) // even: the half-way line is a whole number
  const p = 10 ** Math.floor(Math.log10(n))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p
  return n
}

export function legend(series: readonly Series[]): HTMLElement {
  return h(
    'ul',
    { class: 'legend' },
    series.map((x) => h('li', null, h('span', { class: 'swatch', style: `background:${x.colour}`, 'aria-hidden': 'true' }), x.label)),
  )
}

/** Drawing width: the viewport's (so labels keep their size on a phone), at most 720. */
const chartWidth = () => Math.round(Math.min(720, Math.max(300, (typeof window === 'undefined' ? 720 : window.innerWidth) - 64)))

/** Columns per time bucket: stacked (one column, a segment per series) or grouped (a column per series). */
export function columnChart(opts: { id: string; title: string; buckets: ColumnBucket[]; series: Series[]; bucket: 'hour' | 'day'; stacked: boolean; empty: string }): HTMLElement {
  const { id, title, buckets, series, bucket, stacked } = opts
  const totals = buckets.map((b) => b.values.reduce((a, n) => a + n, 0))
  const total = totals.reduce((a, n) => a + n, 0)
  if (buckets.length === 0 || total === 0) return h('p', { class: 'empty' }, opts.empty)
  const W = chartWidth()
  const H = 220
  const pad = { l: 40, r: 8, t: 10, b: 34 }
  const max = niceMax(Math.max(...(stacked ? totals : buckets.flatMap((b) => b.values))))
  const iw = W - pad.l - pad.r
  const ih = H - pad.t - pad.b
  const bw = iw / buckets.length
  const groupW = Math.max(1, Math.min(stacked ? 40 : 56, bw * 0.8))
  const y = (n: number) => pad.t + ih - (n / max) * ih
  const when = (b: ColumnBucket) => {
    const d = toDate(b.start)
    return d ? (bucket === 'hour' ? d.toISOString().slice(11, 16) : d.toISOString().slice(5, 10)) : b.start
  }
  // Enough room per label (about 6 characters): every k-th bucket is labelled.
  const labelEvery = Math.max(1, Math.ceil(buckets.length / Math.max(2, Math.floor(iw / 56))))
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-labelledby': id, class: 'chart' },
    s('title', { id }, `${title}: ${series.map((x, i) => `${x.label} ${buckets.reduce((a, b) => a + (b.values[i] ?? 0), 0)}`).join(', ')}, in ${buckets.length} ${bucket}s (UTC)`),
    [0, 0.5, 1].map((f) => [
      s('line', { x1: pad.l, x2: W - pad.r, y1: y(max * f), y2: y(max * f), class: 'grid' }),
      s('text', { x: pad.l - 6, y: y(max * f) + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(max * f))),
    ]),
    buckets.map((b, i) => {
      const x0 = pad.l + i * bw + (bw - groupW) / 2
      let acc = 0
      const label = `${when(b)} UTC`
      return s(
        'g',
        null,
        b.values.map((n, si) => {
          if (!n) return null
          const colour = series[si]?.colour ?? COLOURS.other
          const tip = s('title', null, `${label}: ${n} ${series[si]?.label ?? ''}`)
          if (stacked) {
            const r = s('rect', { x: x0, width: groupW, y: y(acc + n), height: Math.max(1, (n / max) * ih), fill: colour }, tip)
            acc += n
            return r
          }
          const w = groupW / series.length
          return s('rect', { x: x0 + si * w, width: Math.max(1, w - 1), y: y(n), height: Math.max(1, (n / max) * ih), fill: colour }, tip)
        }),
        i % labelEvery === 0 ? s('text', { x: pad.l + i * bw + bw / 2, y: H - pad.b + 16, 'text-anchor': 'middle', class: 'axis' }, when(b)) : null,
      )
    }),
    s('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: 'baseline' }),
    s('text', { x: W - pad.r, y: H - 4, 'text-anchor': 'end', class: 'axis' }, bucket === 'hour' ? 'hour (UTC)' : 'day (UTC)'),
  )
  const rows = buckets
    .map((b, i) => ({ b, n: totals[i] ?? 0 }))
    .filter((x) => x.n > 0)
    .map(({ b }) => [utc(toDate(b.start) ?? new Date(NaN)), ...b.values.map(String)])
  return h(
    'figure',
    { class: 'chart-fig' },
    h('div', { class: 'chart-box' }, svg),
    legend(series),
    h('details', null, h('summary', null, 'Show the data'), table(title, [`${bucket === 'hour' ? 'Hour' : 'Day'} from`, ...series.map((x) => x.label)], rows)),
  )
}

/** Horizontal bars in HTML (labels wrap, never cut), largest first, each in its series colour. */
export function barChart(data: { label: Child; text: string; value: number; colour: string }[], title: string, head = 'Reason'): HTMLElement {
  const items = [...data].filter((d) => d.value > 0).sort((a, b) => b.value - a.value)
  if (items.length === 0) return h('p', { class: 'empty' }, 'Nothing to chart.')
  const max = Math.max(...items.map((d) => d.value))
  return h(
    'figure',
    { class: 'chart-fig' },
    h(
      'div',
      { class: 'bars', role: 'img', 'aria-label': `${title}: ${items.map((d) => `${d.text} ${d.value}`).join(', ')}` },
      items.map((d) =>
        h(
          'div',
          { class: 'bar-row', title: `${d.text}: ${d.value}` },
          h('span', { class: 'bar-label' }, d.label),
          h('span', { class: 'bar-track' }, h('span', { class: 'bar', style: `width:${Math.max(1, (100 * d.value) / max)}%;background:${d.colour}` })),
          h('span', { class: 'bar-value' }, String(d.value)),
        ),
      ),
    ),
    h('details', null, h('summary', null, 'Show the data'), table(title, [head, 'Count'], items.map((d) => [d.text, String(d.value)]))),
  )
}
