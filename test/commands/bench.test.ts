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
    const j = r.json<{ levels: { clients: number; connected: number; failed: number; connectRate: number; publish: { n: number }; memory: { proxyMiB: number } }[] }>()
    assert.deepEqual(j.levels.map((l) => [l.clients, l.connected, l.failed]), [[5, 5, 0], [40, 40, 0]])
    for (const l of j.levels) {
      assert.ok(l.connectRate > 0)
      assert.equal(l.publish.n, 10)
      assert.ok(l.memory.proxyMiB > 0, 'proxy memory read from /proc')
    }
    assert.match(readFileSync(join(cwd, 'scale.svg'), 'utf8'), /<polyline/)
  })
})
