import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { latencyChart, niceTicks, scaleChart, textWidth } from '../../../src/lib/bench/chart.js'
import type { LatencyResult, Op, TargetName } from '../../../src/lib/bench/latency.js'
import type { ScaleResult } from '../../../src/lib/bench/scale.js'

const sum = (p50: number) => ({ n: 5, min: p50 / 2, p50, p90: p50 * 1.7, p99: p50 * 2, max: p50 * 3, mean: p50 })
const ops = (k: number): Record<Op, ReturnType<typeof sum>> => ({ connect: sum(900 * k), subscribe: sum(210 * k), publish: sum(230 * k), session: sum(1800 * k), publishSteady: sum(170 * k) })

function latency(targets: TargetName[]): LatencyResult {
  const byTarget = Object.fromEntries(targets.map((t, i) => [t, ops(1 + i * 0.37)]))
  return { count: 5, warmup: 1, latency: { tcp: byTarget, tls: { direct: ops(1.3), relay: ops(1.5), flytrap: ops(2.1) } }, throughput: {}, deliveryThroughput: {}, overhead: {}, journalSync: {} }
}

const svgWidth = (svg: string) => Number(/<svg[^>]* width="([\d.]+)"/.exec(svg)![1])

/** Each legend entry's [x0, x1] and row y, from its swatch and label (width as laid out: 7.5 px a character). */
function legendBoxes(svg: string): { label: string; x0: number; x1: number; y: number }[] {
  return [...svg.matchAll(/<g class="legend-entry">(<(?:rect|line)[^>]*>)<text x="([\d.]+)" y="([\d.]+)">([^<]*)<\/text><\/g>/g)].map((m) => {
    const sx = Number(/ x1?="([\d.]+)"/.exec(m[1]!)![1])
    const label = m[4]!.replace(/&amp;/g, '&').replace(/&lt;/g, '<')
    return { label, x0: sx, x1: Number(m[2]) + textWidth(label), y: Number(m[3]) }
  })
}

function assertNoOverlap(svg: string, labels: string[]) {
  const boxes = legendBoxes(svg)
  assert.deepEqual(boxes.map((b) => b.label), labels)
  for (const a of boxes) {
    assert.ok(a.x1 <= svgWidth(svg), `${a.label} runs off the chart`)
    for (const b of boxes) if (a !== b && a.y === b.y) assert.ok(a.x1 <= b.x0 || b.x1 <= a.x0, `legend "${a.label}" [${a.x0}, ${a.x1}] overlaps "${b.label}" [${b.x0}, ${b.x1}]`)
  }
}

function assertNice(labels: string[]) {
  const values = labels.map(Number)
  assert.ok(values.length >= 3, labels.join(' '))
  assert.equal(values[0], 0)
  const step = values[1]! - values[0]!
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9)
  assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `step ${step} is not 1-2-5`)
  values.forEach((v, i) => assert.ok(Math.abs(v - i * step) < step * 1e-6, `tick ${labels[i]} off the ${step} grid`))
  for (const l of labels) assert.doesNotMatch(l, /\d\.\d*0$|e/, `label ${l} has a trailing zero or exponent`)
}

const ticksOf = (svg: string, cls: string) => [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map((m) => m[1]!)

describe('bench charts', () => {
  test('niceTicks: 1-2-5 steps covering the maximum', () => {
    assert.deepEqual(niceTicks(4.3), [0, 1, 2, 3, 4, 5])
    assert.deepEqual(niceTicks(0.37), [0, 0.1, 0.2, 0.3, 0.4])
    assert.deepEqual(niceTicks(930), [0, 200, 400, 600, 800, 1000])
    assert.deepEqual(niceTicks(12_000), [0, 5000, 10000, 15000])
    assert.deepEqual(niceTicks(0), [0, 1])
    for (let m = 0.0013; m < 1e6; m *= 3.7) {
      const t = niceTicks(m)
      assert.ok(t.at(-1)! >= m && t.length >= 3 && t.length <= 8, `${m}: ${t.join(',')}`)
    }
  })

  test('latency legend: every target shown, no two entries overlap (all six targets too); y ticks are nice', () => {
    const three = latencyChart(latency(['direct', 'relay', 'flytrap']))
    assertNoOverlap(three, ['broker direct', 'TCP relay (HAProxy)', 'FlyTrap'])
    const six = latencyChart(latency(['direct', 'relay', 'flytrap', 'flytrap-relaxed', 'flytrap-nojournal', 'flytrap-alldeliveries']))
    assertNoOverlap(six, ['broker direct', 'TCP relay (HAProxy)', 'FlyTrap', 'FlyTrap, relaxed journal sync', 'FlyTrap, no journal', 'FlyTrap, all deliveries journaled'])
    assertNice(ticksOf(three, 'y-tick'))
    assertNice(ticksOf(six, 'y-tick'))
    // The top tick covers the tallest whisker.
    assert.ok(Number(ticksOf(six, 'y-tick').at(-1)) >= (900 * (1 + 5 * 0.37) * 1.7) / 1000)
  })

  test('scale chart: a labelled x tick at every level, nice ticks on both axes, a direct connect-rate line when measured', () => {
    const lvl = (clients: number, rate: number, p50: number, direct?: number) => ({
      clients,
      connected: clients,
      failed: 0,
      errors: {},
      connectRate: rate,
      connectSeconds: clients / rate,
      publish: sum(p50),
      memory: { proxyMiB: 60, brokerMiB: 5, proxyKiBPerSession: 12, brokerKiBPerSession: 2 },
      ...(direct ? { direct: { connected: clients, failed: 0, connectRate: direct, connectSeconds: clients / direct, publish: sum(p50 / 5) } } : {}),
    })
    const r: ScaleResult = { workers: 2, sources: ['127.0.0.1'], levels: [lvl(10, 131.5, 1450, 769), lvl(100, 465, 1330, 5882), lvl(1000, 815, 1100, 972)] }
    const svg = scaleChart(r)
    assert.deepEqual(ticksOf(svg, 'x-tick'), ['10', '100', '1000'])
    assertNice(ticksOf(svg, 'y-tick'))
    const rate = ticksOf(svg, 'y2-tick')
    assertNice(rate)
    assert.ok(Number(rate.at(-1)) >= 5882, 'the right axis covers the direct rate')
    assert.equal((svg.match(/<polyline/g) ?? []).length, 4)
    assertNoOverlap(svg, ['PUBLISH p50', 'PUBLISH p99', 'connect rate, FlyTrap', 'connect rate, broker direct'])
    const without = scaleChart({ ...r, levels: r.levels.map(({ direct: _d, ...l }) => l) })
    assert.equal((without.match(/<polyline/g) ?? []).length, 3)
    assert.doesNotMatch(without, /broker direct/)
  })
})
