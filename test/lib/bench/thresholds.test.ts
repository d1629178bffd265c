import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { FlytrapError } from '../../../src/lib/errors.js'
import { compareBaseline, evaluateThresholds, parseThreshold, parseTolerance, checkBaseline } from '../../../src/lib/bench/thresholds.js'
import { latencyCatalogue, latencyMetrics, scaleCatalogue, scaleMetrics } from '../../../src/lib/bench/metrics.js'
import { prepareGate, runGate } from '../../../src/lib/bench/gate.js'
import type { LatencyResult } from '../../../src/lib/bench/latency.js'
import type { ScaleResult } from '../../../src/lib/bench/scale.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { mkdtempSync } from 'node:fs'

const cat = latencyCatalogue()
const usage = (re: RegExp) => (err: unknown) => err instanceof FlytrapError && err.exit === 2 && re.test(err.message)

/** A latency result in µs, as runLatencyBench returns it (only the fields metrics read need to be real). */
function latencyResult(scale = 1): LatencyResult {
  const s = (p50: number, p90 = p50 * 1.5) => ({ n: 10, min: p50 / 2, p50, p90, p99: p90, max: p90 * 2, mean: p50 })
  const ops = (c: number, p: number) => ({ connect: s(c), subscribe: s(p), publish: s(p), session: s(c + 3 * p), publishSteady: s(p) })
  return {
    count: 10,
    warmup: 1,
    latency: { tcp: { direct: ops(200, 100), relay: ops(260, 130), flytrap: ops(200 + 700 * scale, 100 + 300 * scale) } },
    throughput: { tcp: { direct: 50_000, relay: 40_000, flytrap: 20_000 / scale } },
    deliveryThroughput: { tcp: {} },
    overhead: {},
    journalSync: { tcp: { publishP50: {}, publishSteadyP50: {}, throughput: {}, deliveryThroughput: {}, strictThroughputShare: 0.9, strictAddedUs: 50 } },
  }
}
const withMetrics = (r: LatencyResult) => ({ ...r, metrics: latencyMetrics(r) })

describe('bench thresholds: grammar', () => {
  test('every operator, spaces, signs and exponents; short names complete to tcp', () => {
    for (const [expr, op, value] of [
      ['connect.addedMs.p50<0.5', '<', 0.5],
      ['connect.addedMs.p50 <= 1e-1', '<=', 0.1],
      ['throughput.ratioToRelay>0.9', '>', 0.9],
      ['throughput.flytrap >= 20000', '>=', 20000],
      ['journal.strictShare==1', '==', 1],
      ['journal.strictShare != -2.5', '!=', -2.5],
      ['publish.addedMs.p50<.25', '<', 0.25],
    ] as const) {
      const t = parseThreshold(expr, cat)
      assert.equal(t.op, op, expr)
      assert.equal(t.value, value, expr)
      assert.equal(t.kind, 'metric')
    }
    assert.equal(parseThreshold('connect.addedMs.p50<1', cat).path, 'metrics.tcp.connect.addedMs.p50')
    assert.equal(parseThreshold('tls.connect.addedMs.p50<1', cat).path, 'metrics.tls.connect.addedMs.p50')
    assert.equal(parseThreshold('metrics.tcp.throughput.flytrap>1', cat).path, 'metrics.tcp.throughput.flytrap')
  })

  test('bad syntax and unknown names are usage errors naming the expression', () => {
    for (const bad of ['connect.addedMs.p50', 'connect.addedMs.p50 < x', '<1', 'connect..p50<1', 'connect.addedMs.p50 =< 1', 'connect.addedMs.p50<1ms', 'a b<1', ''])
      assert.throws(() => parseThreshold(bad, cat), usage(/not "<metric> <op> <number>"/), bad)
    assert.throws(() => parseThreshold('connect.addedMs.p51<1', cat), usage(/unknown metric "connect\.addedMs\.p51"/))
    assert.throws(() => parseThreshold('metrics.tcp.nope<1', cat), usage(/unknown metric/))
    assert.throws(() => parseThreshold('udp.connect.addedMs.p50<1', cat), usage(/unknown metric/))
  })

  test('raw paths are accepted by their root and checked on the result', () => {
    const t = parseThreshold('latency.tcp.flytrap.connect.p99 < 100000', cat)
    assert.equal(t.kind, 'raw')
    const r = withMetrics(latencyResult())
    assert.deepEqual(evaluateThresholds([t], r), [{ expr: t.expr, actual: r.latency.tcp!.flytrap!.connect.p99, ok: true }])
    assert.throws(() => evaluateThresholds([parseThreshold('latency.tcp.nobody.connect.p50<1', cat)], r), usage(/not a number in the result/))
  })
})

describe('bench thresholds: evaluation on the metrics', () => {
  test('latency metrics are FlyTrap minus direct in ms, over the relay, and throughput ratios', () => {
    const m = latencyMetrics(latencyResult()).tcp!
    assert.equal(m.connect.addedMs.p50, 0.7)
    assert.ok(Math.abs(m.connect.addedOverRelayMs! - (0.7 - 0.06)) < 1e-9)
    assert.equal(m.publishSteady.addedMs.p50, 0.3)
    assert.ok(Math.abs(m.publishSteady.addedRatioToRelay! - 10) < 1e-9)
    assert.equal(m.throughput!.ratioToDirect, 0.4)
    assert.equal(m.throughput!.ratioToRelay, 0.5)
    assert.equal(m.journal!.strictShare, 0.9)
  })

  test('each verdict with its actual value; a metric the run did not produce fails with null', () => {
    const r = withMetrics(latencyResult())
    const checks = evaluateThresholds(
      ['connect.addedMs.p50<0.5', 'connect.addedMs.p50<=0.7', 'throughput.ratioToRelay>0.9', 'throughput.flytrap>=20000', 'journal.strictShare!=0.9', 'tls.connect.addedMs.p50<10'].map((e) => parseThreshold(e, cat)),
      r,
    )
    assert.deepEqual(
      checks.map((c) => [c.actual, c.ok]),
      [[0.7, false], [0.7, true], [0.5, false], [20000, true], [0.9, false], [null, false]],
    )
  })

  test('scale metrics per level, with the direct baseline ratio', () => {
    const s = { n: 5, min: 1000, p50: 2000, p90: 3000, p99: 4000, max: 5000, mean: 2000 }
    const r: ScaleResult = {
      workers: 2,
      sources: ['127.0.0.1'],
      levels: [{ clients: 10, connected: 10, failed: 0, errors: {}, connectRate: 500, connectSeconds: 0.02, publish: s, memory: { proxyMiB: 50, brokerMiB: 5, proxyKiBPerSession: 12, brokerKiBPerSession: 3 }, direct: { connected: 10, failed: 0, connectRate: 2000, connectSeconds: 0.005, publish: s } }],
    }
    const m = scaleMetrics(r)
    assert.equal(m['10']!.connectRateRatio, 0.25)
    assert.equal(m['10']!.publish.p50Ms, 2)
    const checks = evaluateThresholds([parseThreshold('10.connectRateRatio>0.5', scaleCatalogue([10])), parseThreshold('10.memory.proxyKiBPerSession<20', scaleCatalogue([10]))], { ...r, metrics: m })
    assert.deepEqual(checks.map((c) => c.ok), [false, true])
    assert.throws(() => parseThreshold('100.connectRate>1', scaleCatalogue([10])), usage(/unknown metric/))
  })
})

describe('bench baseline', () => {
  test('tolerance forms', () => {
    assert.equal(parseTolerance('10%'), 0.1)
    assert.equal(parseTolerance('10'), 0.1)
    assert.equal(parseTolerance('0.25'), 0.25)
    assert.throws(() => parseTolerance('ten'), usage(/--tolerance/))
  })

  test('each metric regresses in its own direction: a 2× slower FlyTrap fails, the same run passes', () => {
    const base = withMetrics(latencyResult(1))
    const same = compareBaseline(base, base, cat, 0.1)
    assert.ok(same.length > 10 && same.every((c) => c.ok && c.changePct === 0))
    const worse = compareBaseline(base, withMetrics(latencyResult(2)), cat, 0.1)
    const bad = worse.filter((c) => !c.ok).map((c) => c.metric)
    for (const m of ['tcp.connect.addedMs.p50', 'tcp.publishSteady.addedMs.p50', 'tcp.throughput.flytrap', 'tcp.throughput.ratioToDirect']) assert.ok(bad.includes(m), `${m} should regress: ${bad.join(', ')}`)
    assert.ok(!bad.includes('tcp.throughput.direct'), 'direct did not change')
    // Better in the good direction never fails, however large.
    assert.ok(compareBaseline(withMetrics(latencyResult(2)), base, cat, 0.1).every((c) => c.ok))
    const thr = worse.find((c) => c.metric === 'tcp.throughput.flytrap')!
    assert.equal(thr.changePct, -50)
  })

  test('a missing, non-JSON or foreign baseline file is a usage error from prepareGate (before any run)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-baseline-'))
    assert.throws(() => prepareGate({ baseline: join(dir, 'none.json'), catalogue: cat, command: 'bench latency' }), usage(/cannot read it \(ENOENT\)/))
    writeFileSync(join(dir, 'bad.json'), '{ not json')
    assert.throws(() => prepareGate({ baseline: join(dir, 'bad.json'), catalogue: cat, command: 'bench latency' }), usage(/not JSON/))
    writeFileSync(join(dir, 'other.json'), '{"levels": []}')
    assert.throws(() => prepareGate({ baseline: join(dir, 'other.json'), catalogue: cat, command: 'bench latency' }), usage(/no metrics object/))
    assert.throws(() => checkBaseline('[1]', 'x.json', 'bench latency'), usage(/no metrics object/))
    // A scale baseline against a latency run shares no metric.
    writeFileSync(join(dir, 'scale.json'), JSON.stringify({ metrics: { '10': { connectRate: 5 } } }))
    const g = prepareGate({ baseline: join(dir, 'scale.json'), catalogue: cat, command: 'bench latency' })
    assert.throws(() => runGate(g, withMetrics(latencyResult())), usage(/shares no metric/))
  })

  test('runGate: ok only when every threshold and baseline check holds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ft-baseline-'))
    const base = withMetrics(latencyResult(1))
    writeFileSync(join(dir, 'b.json'), JSON.stringify(base))
    const g = prepareGate({ thresholds: ['connect.addedMs.p50<1'], baseline: join(dir, 'b.json'), tolerance: '10%', catalogue: cat, command: 'bench latency' })
    assert.equal(runGate(g, base).ok, true)
    const v = runGate(g, withMetrics(latencyResult(2)))
    assert.equal(v.ok, false)
    assert.deepEqual(v.thresholds, [{ expr: 'connect.addedMs.p50<1', actual: 1.4, ok: false }])
    assert.equal(v.baseline!.tolerancePct, 10)
  })
})
