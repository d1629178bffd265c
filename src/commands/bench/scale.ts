import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { scaleChart } from '../../lib/bench/chart.js'
import { DIRECT_IN_FLIGHT, runScaleBench, type ScaleResult } from '../../lib/bench/scale.js'
import { startBenchStack } from '../../lib/bench/bench-stack.js'
import { parseLevels } from '../../lib/bench/targets.js'
import { ExitCode, usageError } from '../../lib/errors.js'
import { benchGateFlags, givenFlags } from '../../lib/cli/bench-flags.js'
import { gateFailure, gateRows, gateUsed, prepareGate, runGate, type GateResult } from '../../lib/bench/gate.js'
import { scaleCatalogue, scaleMetrics, type ScaleLevelMetrics } from '../../lib/bench/metrics.js'
import { renderSummary, type SummaryFormat } from '../../lib/bench/summary.js'

export interface BenchScaleResult extends ScaleResult {
  proxyWorkers: number
  notes: string[]
  /** The stable numbers --threshold and --baseline name, per level (`<clients>.connectRate`, …). */
  metrics: Record<string, ScaleLevelMetrics>
  profile?: 'ci'
  /** Wall time of the whole run, stack start included (seconds). */
  seconds: number
  thresholds?: GateResult['thresholds']
  baseline?: GateResult['baseline']
}

/** --profile ci: three levels up to 1,000 sessions, one proxy process, fewer samples. */
const CI_PROFILE = { clients: '10,100,1000', 'proxy-workers': 1, samples: 100 } as const

export default class BenchScale extends ChainCommand<typeof BenchScale> {
  static override description = `Concurrency: N distinct device keys connected at once through FlyTrap, then PUBLISH→PUBACK under that load

For each level: connection-establishment rate, PUBLISH→PUBACK round trips on random open sessions, proxy and
broker resident memory per session (from /proc) and the proxy's heap after a full GC per session. Starts its own
anvil, contract, mosquitto and proxy; load comes from worker threads spread over several 127.0.0.x source addresses.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --clients 10,100,1000,10000 --proxy-workers 2 --chart scale.svg --json', '<%= config.bin %> <%= command.id %> --profile ci --threshold "1000.connectRateRatio>0.1" --summary junit --summary-file scale.xml']
  static override flags = {
    clients: Flags.string({ description: 'concurrency levels (comma-separated)', default: '10,100,1000,10000' }),
    workers: Flags.integer({ description: 'load-generator worker threads [default: cores]', min: 1, max: 64 }),
    'proxy-workers': Flags.integer({ description: 'proxy processes (each holds two file descriptors per session)', default: 2, min: 1, max: 64 }),
    concurrency: Flags.integer({ description: 'connections each load worker opens at once', default: 200, min: 1 }),
    samples: Flags.integer({ description: 'PUBLISH → PUBACK samples per level', default: 200, min: 1 }),
    chart: Flags.string({ description: 'write the scale curve to this SVG file' }),
    direct: Flags.boolean({ description: 'also run each level straight against the broker (the direct baseline: connectRateRatio)', default: true, allowNo: true }),
    ...benchGateFlags,
  }

  async run(): Promise<BenchScaleResult> {
    const started = Date.now()
    const f = { ...this.flags }
    if (f.profile === 'ci') {
      const given = givenFlags((await this.parse(BenchScale)).metadata, this.flags)
      for (const [k, v] of Object.entries(CI_PROFILE)) if (!given.has(k)) (f as Record<string, unknown>)[k] = v
    }
    const levels = parseLevels(f.clients)
    // Everything a CI gate can get wrong is refused here, before any stack starts.
    if (f.summary && this.jsonEnabled() && !f['summary-file']) throw usageError('--summary with --json needs --summary-file (stdout is the JSON result)')
    const gate = prepareGate({ thresholds: f.threshold, baseline: f.baseline, tolerance: f.tolerance, catalogue: scaleCatalogue(levels), command: 'bench scale' })
    const notes = [
      'sessions publish to unregistered topics allowed by --unregistered allow: each key is new, so no per-key grant transactions are needed, and every publish still goes through the policy lookup',
    ]
    if (f.direct)
      notes.push(
        `direct: the same generator, keys and CONNECT bytes straight to mosquitto after FlyTrap's sessions of the level are closed, with at most ${DIRECT_IN_FLIGHT} connects in flight (mosquitto listens with a backlog of 100; beyond it dropped SYNs would time the kernel's 1 s retransmit)`,
      )
    notes.push('proxy KiB/session is resident memory (VmRSS of every proxy process, summed) before and after the level opened; heap KiB/session is the V8 heap after a full GC in every proxy process (summed, SIGUSR2 to a preloaded probe): what the idle sessions themselves hold')
    const heapProbeDir = mkdtempSync(join(tmpdir(), 'flytrap-heap-probe-'))
    const stack = await this.spin('Starting anvil, contract, mosquitto and proxy', (s) =>
      startBenchStack({ proxyArgs: ['--unregistered', 'allow', '--workers', String(f['proxy-workers'])], onStep: (t) => (s.text = t), heapProbeDir }),
    ).catch((err: unknown) => {
      rmSync(heapProbeDir, { recursive: true, force: true })
      throw err
    })
    let result: ScaleResult
    try {
      result = await this.spin('Scaling', (s) =>
        runScaleBench({
          target: stack.targets.flytrap,
          direct: f.direct ? stack.targets.direct : undefined,
          chainId: stack.chainId,
          contract: stack.contract,
          levels,
          workers: f.workers,
          concurrency: f.concurrency,
          samples: f.samples,
          topicPrefix: 'scale',
          pids: { proxy: [stack.pids.proxy], broker: stack.pids.broker },
          heapProbeDir,
          onProgress: (t) => (s.text = t),
        }),
      )
    } finally {
      await stack.stop()
      rmSync(heapProbeDir, { recursive: true, force: true })
    }
    const out: BenchScaleResult = { ...result, proxyWorkers: f['proxy-workers'], notes, metrics: scaleMetrics(result), ...(f.profile ? { profile: 'ci' as const } : {}), seconds: (Date.now() - started) / 1000 }
    if (f.chart) writeFileSync(f.chart, scaleChart(result))
    const verdict = runGate(gate, out)
    if (gateUsed(gate)) Object.assign(out, { thresholds: verdict.thresholds, baseline: verdict.baseline })
    const ms = (us: number) => (us / 1000).toFixed(3)
    const dash = (v: number | undefined, f: (x: number) => string) => (v === undefined ? '-' : f(v))
    this.say(
      table(
        ['clients', 'connected', 'connects/s', 'direct connects/s', 'FlyTrap / direct', 'PUBLISH p50 (ms)', 'direct p50 (ms)', 'p99 (ms)', 'proxy MiB', 'proxy KiB/session', 'heap KiB/session', 'broker KiB/session'],
        out.levels.map((l) => [
          l.clients,
          l.connected,
          Math.round(l.connectRate),
          dash(l.direct?.connectRate, (v) => String(Math.round(v))),
          dash(out.metrics[String(l.clients)]?.connectRateRatio, (v) => v.toFixed(2)),
          ms(l.publish.p50),
          dash(l.direct?.publish.p50, ms),
          ms(l.publish.p99),
          l.memory.proxyMiB.toFixed(0),
          l.memory.proxyKiBPerSession.toFixed(1),
          dash(l.memory.proxyHeapKiBPerSession, (v) => v.toFixed(1)),
          l.memory.brokerKiBPerSession.toFixed(1),
        ]),
      ),
    )
    this.say(`load: ${out.workers} worker threads over ${out.sources.join(', ')}; proxy: ${out.proxyWorkers} process(es)`)
    for (const l of out.levels) if (l.failed) this.say(`${l.clients}: ${l.failed} failed: ${JSON.stringify(l.errors)}`)
    for (const n of notes) this.say(`note: ${n}`)
    for (const t of gateRows(verdict)) this.say(`\n${t.title}\n${table(t.head, t.rows)}`)
    this.say(`run time: ${out.seconds.toFixed(1)} s`)
    if (f.summary) {
      const text = renderSummary(f.summary as SummaryFormat, {
        title: `flytrap bench scale${f.profile ? ` (profile ${f.profile})` : ''}`,
        seconds: out.seconds,
        gate: verdict,
        results: Object.entries(out.metrics).flatMap(([n, m]): [string, number | undefined, string][] => [
          [`${n} clients: connects/s`, m.connectRate, '/s'],
          [`${n} clients: FlyTrap / direct connect rate`, m.connectRateRatio, ''],
          [`${n} clients: PUBLISH p50`, m.publish.p50Ms, 'ms'],
          [`${n} clients: proxy KiB/session`, m.memory.proxyKiBPerSession, 'KiB'],
          [`${n} clients: proxy heap KiB/session`, m.memory.proxyHeapKiBPerSession, 'KiB'],
        ]),
      })
      if (f['summary-file']) writeFileSync(f['summary-file'], text.endsWith('\n') ? text : `${text}\n`)
      else this.log(text)
    }
    if (!verdict.ok) {
      process.exitCode = ExitCode.threshold
      process.stderr.write(`${gateFailure(verdict)}\n`)
    }
    return out
  }
}
