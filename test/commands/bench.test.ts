/**
 * CI smoke run of `flytrap bench`: a few iterations against the self-contained stack. It checks that the
 * runs complete and produce valid, complete JSON and charts — never timings (those belong to `npm run bench`).
 * Through the binary, not in-process: a bench run is its own stack and load generator for a minute, which
 * the test runner's event loop beside it would disturb, and one node start-up is nothing next to it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, tempCwd } from '../helpers/cli.js'
import { compareBaseline } from '../../src/lib/bench/thresholds.js'
import { latencyCatalogue } from '../../src/lib/bench/metrics.js'

const summaryKeys = ['n', 'min', 'p50', 'p90', 'p99', 'max', 'mean']

describe('flytrap bench (smoke)', () => {
  test('latency: every target, packet type and transport has a summary; throughput and overhead present', async () => {
    const cwd = tempCwd()
    const r = await runCli(['bench', 'latency', '--count', '3', '--warmup', '1', '--pipeline', '300', '--chart', 'latency.svg', '--json'], { cwd, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    const j = r.json<{ mode: string; latency: Record<string, Record<string, Record<string, Record<string, number>>>>; throughput: Record<string, Record<string, number>>; overhead: Record<string, Record<string, { flytrapOverDirect: number }>> }>()
    assert.equal(j.mode, 'self-contained')
    for (const transport of ['tcp', 'tls']) {
      for (const target of ['direct', 'flytrap', 'relay']) {
        for (const op of ['connect', 'subscribe', 'publish', 'session', 'publishSteady']) {
          const s = j.latency[transport]?.[target]?.[op] as Record<string, number> | undefined
          assert.ok(s, `${transport}/${target}/${op} missing`)
          assert.deepEqual(Object.keys(s).sort(), [...summaryKeys].sort())
          assert.equal(s.n, 3)
          assert.ok(s.min! > 0 && s.min! <= s.p50! && s.p50! <= s.max!, `${transport}/${target}/${op} is not ordered`)
        }
        assert.ok(j.throughput[transport]![target]! > 0)
      }
      assert.ok(j.overhead[transport]!.publish!.flytrapOverDirect > 0)
    }
    // What strict journal sync costs (TCP): the same proxy with --journal-sync relaxed and with --no-journal.
    for (const target of ['flytrap-relaxed', 'flytrap-nojournal']) assert.equal(j.latency.tcp?.[target]?.publish?.n, 3, `tcp/${target}`)
    const cost = (j as unknown as { journalSync: Record<string, { throughput: Record<string, number>; strictThroughputShare?: number; strictAddedUs?: number }> }).journalSync.tcp
    assert.ok(cost && ['strict', 'relaxed', 'off'].every((m) => cost.throughput[m]! > 0) && cost.strictThroughputShare! > 0 && typeof cost.strictAddedUs === 'number', JSON.stringify(cost))
    const svg = readFileSync(join(cwd, 'latency.svg'), 'utf8')
    assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    assert.equal((svg.match(/<title>flytrap:/g) ?? []).length, 8, 'one FlyTrap bar per packet type and transport')
  })

  test('scale: every level connects all its distinct keys and reports memory and round trips', async () => {
    const cwd = tempCwd()
    const r = await runCli(['bench', 'scale', '--clients', '5,40', '--samples', '10', '--proxy-workers', '1', '--chart', 'scale.svg', '--json'], { cwd, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    const j = r.json<{ levels: { clients: number; connected: number; failed: number; connectRate: number; publish: { n: number }; memory: { proxyMiB: number; proxyHeapMiB?: number; proxyHeapKiBPerSession?: number }; direct?: { connected: number; connectRate: number; publish: { n: number } } }[]; metrics: Record<string, { connectRateRatio?: number; memory: { proxyHeapKiBPerSession?: number } }> }>()
    assert.deepEqual(j.levels.map((l) => [l.clients, l.connected, l.failed]), [[5, 5, 0], [40, 40, 0]])
    // The direct baseline: the same generator straight to the stack's mosquitto, per level.
    assert.deepEqual(j.levels.map((l) => [l.direct?.connected, l.direct?.publish.n]), [[5, 10], [40, 10]])
    for (const l of j.levels) assert.ok(l.direct!.connectRate > 0 && j.metrics[String(l.clients)]!.connectRateRatio! > 0)
    for (const l of j.levels) {
      assert.ok(l.connectRate > 0)
      assert.equal(l.publish.n, 10)
      assert.ok(l.memory.proxyMiB > 0, 'proxy memory read from /proc')
      // The heap after a full GC, from the probe in the proxy process (SIGUSR2): a part of what is resident.
      assert.ok(l.memory.proxyHeapMiB! > 0 && l.memory.proxyHeapMiB! < l.memory.proxyMiB, `proxy heap ${l.memory.proxyHeapMiB} MiB of ${l.memory.proxyMiB} resident`)
      assert.equal(typeof l.memory.proxyHeapKiBPerSession, 'number')
      assert.equal(j.metrics[String(l.clients)]!.memory.proxyHeapKiBPerSession, l.memory.proxyHeapKiBPerSession)
    }
    assert.equal((readFileSync(join(cwd, 'scale.svg'), 'utf8').match(/<polyline/g) ?? []).length, 4, 'p50, p99, connect rate and the direct connect rate')
  })

  test('CI gate: --profile ci with an impossible threshold exits 1 listing every check (--json and a JUnit file); explicit flags override the profile; a doubled-throughput baseline regresses', async () => {
    const cwd = tempCwd()
    const r = await runCli(
      ['bench', 'latency', '--profile', 'ci', '--warmup', '2', '--threshold', 'connect.addedMs.p50<-1', '--threshold', 'throughput.ratioToDirect>0', '--threshold', 'latency.tcp.flytrap.connect.n==105', '--summary', 'junit', '--summary-file', 'bench.xml', '--json'],
      { cwd, timeoutMs: 180_000 },
    )
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /bench gate failed: connect\.addedMs\.p50<-1 \(actual [\d.]+\)/)
    type Result = { profile: string; seconds: number; count: number; warmup: number; latency: Record<string, unknown>; thresholds: { expr: string; actual: number | null; ok: boolean }[]; metrics: { tcp: { connect: { addedMs: { p50: number } }; throughput: { flytrap: number; ratioToDirect: number } } } }
    const j = r.json<Result>()
    assert.equal(j.profile, 'ci')
    // The profile's sizes, except what was given explicitly.
    assert.deepEqual([j.count, j.warmup], [105, 2])
    assert.ok(j.seconds > 0)
    assert.deepEqual(Object.keys(j.latency), ['tcp'], 'the ci profile is TCP only')
    assert.deepEqual(
      j.thresholds.map((t) => [t.expr, t.ok]),
      [['connect.addedMs.p50<-1', false], ['throughput.ratioToDirect>0', true], ['latency.tcp.flytrap.connect.n==105', true]],
    )
    assert.equal(j.thresholds[0]!.actual, j.metrics.tcp.connect.addedMs.p50)
    assert.equal(j.thresholds[1]!.actual, j.metrics.tcp.throughput.ratioToDirect)
    const xml = readFileSync(join(cwd, 'bench.xml'), 'utf8')
    assert.equal((xml.match(/<testcase /g) ?? []).length, 3)
    assert.equal((xml.match(/<failure /g) ?? []).length, 1)
    assert.match(xml, /name="connect.addedMs.p50&lt;-1"/)
    // The same real result as a baseline, with FlyTrap's throughput doubled: this run regressed by half.
    const base = structuredClone(j)
    base.metrics.tcp.throughput.flytrap *= 2
    const checks = compareBaseline(base, j, latencyCatalogue(), 0.1)
    const thr = checks.find((c) => c.metric === 'tcp.throughput.flytrap')!
    assert.equal(thr.ok, false)
    assert.equal(Math.round(thr.changePct), -50)
    assert.ok(compareBaseline(j, j, latencyCatalogue(), 0.1).every((c) => c.ok), 'a run against itself passes')
  })

  test('CI gate: a bad threshold or baseline is a usage error before anything starts', async () => {
    const cwd = tempCwd()
    const message = (r: { json: <T>() => T }) => r.json<{ error: { message: string } }>().error.message
    const bad = await runCli(['bench', 'latency', '--threshold', 'connect.addedMs.p51<1', '--json'], { cwd })
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(message(bad), /unknown metric "connect\.addedMs\.p51"/)
    // Named services without a key would fail with exit 3 (config) at the first use of the chain: exit 2
    // shows the threshold was refused before that (and before any connection).
    const first = await runCli(['bench', 'latency', '--broker', 'mqtt://127.0.0.1:1', '--proxy', 'mqtt://127.0.0.1:2', '--threshold', 'connect.addedMs.p50 <', '--json'], { cwd, env: { FLYTRAP_KEY: undefined } })
    assert.equal(first.code, 2, first.stderr)
    assert.match(message(first), /not "<metric> <op> <number>"/)
    const noFile = await runCli(['bench', 'scale', '--baseline', 'missing.json', '--json'], { cwd })
    assert.equal(noFile.code, 2, noFile.stderr)
    assert.match(message(noFile), /--baseline missing\.json: cannot read it/)
    const scale = await runCli(['bench', 'scale', '--profile', 'ci', '--threshold', '10000.connectRate>1', '--json'], { cwd })
    assert.equal(scale.code, 2, scale.stderr)
    assert.match(message(scale), /unknown metric "10000\.connectRate"/)
  })
})

describe('bench sync', () => {
  test('a real proxy cold-starts on the written history: every topic and grant loaded, with its time and memory', async () => {
    const cwd = tempCwd()
    const r = await runCli(['bench', 'sync', '--topics', '2', '--grants', '1100', '--per-block', '200', '--json'], { cwd, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as { topics: number; grants: number; topicsLoaded: number; grantsLoaded: number; blocks: number; syncSeconds: number; proxyRssMiB: number; emptyProxyRssMiB: number; targets: { met: boolean } }
    assert.equal(j.topicsLoaded, 2)
    // 1,100 grants: three grantsOf() calls (500 a call), and every one is loaded.
    assert.equal(j.grantsLoaded, 1100)
    assert.equal(j.blocks, Math.ceil(1102 / 200))
    assert.ok(j.syncSeconds > 0 && j.syncSeconds < 30)
    assert.ok(j.proxyRssMiB > 0 && j.emptyProxyRssMiB > 0)
  })
})

describe('bench revoke', () => {
  test('both modes measured on real proxies: every sample a DISCONNECT, metrics for the gate, an impossible threshold exits 1', async () => {
    const cwd = tempCwd()
    const r = await runCli(['bench', 'revoke', '--samples', '3', '--poll-interval', '300ms', '--threshold', 'subscription.p50Ms<0', '--json'], { cwd, timeoutMs: 180_000 })
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /bench gate failed: subscription\.p50Ms<0/)
    const j = JSON.parse(r.stdout) as { pollIntervalMs: number; blockTimeSec: number | null; modes: Record<string, { n: number; disconnects: number; p50: number; p95: number; max: number; samplesMs: number[] }>; metrics: Record<string, { p50Ms: number } | number>; thresholds: { ok: boolean }[] }
    assert.equal(j.pollIntervalMs, 300)
    assert.equal(j.blockTimeSec, null)
    for (const m of ['subscription', 'polling']) {
      const s = j.modes[m]!
      assert.equal(s.n, 3)
      assert.equal(s.disconnects, 3, `${m}: each revoked session ends with an MQTT DISCONNECT`)
      assert.ok(s.p50 > 0 && s.p50 <= s.p95 && s.p95 <= s.max, JSON.stringify(s))
      assert.equal((j.metrics[m] as { p50Ms: number }).p50Ms, s.p50)
    }
    assert.equal(typeof j.metrics.speedupP50, 'number')
    assert.deepEqual(j.thresholds.map((t) => t.ok), [false])
  })

  test('interval mining (--block-time), one mode; a bad flag or metric is a usage error before anything starts', async () => {
    const cwd = tempCwd()
    const r = await runCli(['bench', 'revoke', '--samples', '2', '--block-time', '1', '--mode', 'subscription', '--json'], { cwd, timeoutMs: 180_000 })
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as { blockTimeSec: number; modes: Record<string, { n: number }> }
    assert.equal(j.blockTimeSec, 1)
    assert.deepEqual(Object.keys(j.modes), ['subscription'])
    assert.equal(j.modes.subscription!.n, 2)
    const bad = await runCli(['bench', 'revoke', '--poll-interval', '10ms', '--json'], { cwd })
    assert.equal(bad.code, 2, bad.stderr)
    const metric = await runCli(['bench', 'revoke', '--threshold', 'subscription.p99Ms<1', '--json'], { cwd })
    assert.equal(metric.code, 2, metric.stderr)
  })
})
