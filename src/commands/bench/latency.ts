import { writeFileSync } from 'node:fs'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { latencyChart } from '../../lib/bench/chart.js'
import { OPS, runLatencyBench, type LatencyResult, type LatencyTargets, type Op, type TargetName } from '../../lib/bench/latency.js'
import { BENCH_TOPIC, startBenchStack, type BenchStack } from '../../lib/bench/bench-stack.js'
import { parseTarget } from '../../lib/bench/targets.js'
import { ExitCode, FlytrapError, usageError } from '../../lib/errors.js'
import { benchGateFlags, givenFlags } from '../../lib/cli/bench-flags.js'
import { gateFailure, gateRows, gateUsed, prepareGate, runGate, type GateResult } from '../../lib/bench/gate.js'
import { latencyCatalogue, latencyMetrics, type LatencyMetrics } from '../../lib/bench/metrics.js'
import { renderSummary, type SummaryFormat } from '../../lib/bench/summary.js'

export interface BenchLatencyResult extends LatencyResult {
  /** Where the numbers come from: the self-contained stack or the services named by flags. */
  mode: 'self-contained' | 'named'
  notes: string[]
  machine: { cpus: number; node: string }
  /** The stable numbers --threshold and --baseline name (README "flytrap bench in CI"): per transport, ms and ratios. */
  metrics: Record<string, LatencyMetrics>
  /** --profile, when given. */
  profile?: 'ci'
  /** Wall time of the whole run, stack start included (seconds). */
  seconds: number
  /** Verdicts of --threshold (and --baseline), when asked for. */
  thresholds?: GateResult['thresholds']
  baseline?: GateResult['baseline']
}

/** --profile ci: TCP only, no journal-mode variants, short throughput runs (≤ 60 s on 2 cores, stack included). */
const CI_PROFILE = { transport: 'tcp', count: 105, warmup: 5, pipeline: 5_000, 'journal-modes': false } as const

export default class BenchLatency extends ChainCommand<typeof BenchLatency> {
  static override description = `Round trips through the broker directly, FlyTrap and a plain TCP relay (HAProxy), interleaved, over TCP and TLS

Measures CONNECT→CONNACK (with authentication), SUBSCRIBE→SUBACK, QoS 1 PUBLISH→PUBACK, the paper's whole session
(connect, subscribe, publish, disconnect), steady-state publish round trips and pipelined QoS 1 throughput. Without
--broker/--proxy it starts its own anvil, contract, mosquitto, proxy (own process) and HAProxy, and (TCP) the same proxy
with --journal-sync relaxed, with --no-journal and with --journal-deliveries all, for what the journal costs; pipelined
throughput is measured again with one subscriber on the topic, so every message is also delivered.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --count 1005 --warmup 5 --chart latency.svg --json > latency.json',
    '<%= config.bin %> <%= command.id %> --transport tcp --count 505 --pipeline 20000',
    '<%= config.bin %> <%= command.id %> --profile ci --threshold "connect.addedMs.p50<2" --threshold "throughput.ratioToDirect>0.3" --summary markdown --summary-file $GITHUB_STEP_SUMMARY',
    '<%= config.bin %> <%= command.id %> --profile ci --baseline previous.json --tolerance 15%',
    '<%= config.bin %> <%= command.id %> --broker mqtt://10.0.0.5:1883 --proxy mqtt://10.0.0.5:1884 --relay mqtt://10.0.0.5:1885 --key $KEY',
  ]
  static override flags = {
    count: Flags.integer({ description: 'measured samples per packet type and target', default: 105, min: 1 }),
    warmup: Flags.integer({ description: 'leading samples discarded', default: 5, min: 0 }),
    pipeline: Flags.integer({ description: 'messages per pipelined QoS 1 throughput run (0 = skip)', default: 20_000, min: 0 }),
    window: Flags.integer({ description: 'unacknowledged QoS 1 messages in flight during the throughput run', default: 64, min: 1 }),
    transport: Flags.string({ description: 'which transports to measure', options: ['tcp', 'tls', 'both'], default: 'both' }),
    broker: Flags.string({ description: 'measure this broker directly (mqtt:// or mqtts://) instead of starting one' }),
    proxy: Flags.string({ description: 'the FlyTrap proxy in front of --broker' }),
    relay: Flags.string({ description: 'a plain TCP relay in front of --broker (optional)' }),
    'journal-modes': Flags.boolean({ description: 'also measure FlyTrap with --journal-sync relaxed, with --no-journal and with --journal-deliveries all (self-contained, TCP)', default: true, allowNo: true }),
    'proxy-relaxed': Flags.string({ description: 'named services: a FlyTrap proxy run with --journal-sync relaxed, in front of --broker' }),
    'proxy-nojournal': Flags.string({ description: 'named services: a FlyTrap proxy run with --no-journal, in front of --broker' }),
    'proxy-alldeliveries': Flags.string({ description: 'named services: a FlyTrap proxy run with --journal-deliveries all, in front of --broker' }),
    ca: Flags.string({ description: 'CA bundle for mqtts:// targets' }),
    topic: Flags.string({ description: 'topic the benchmark key may publish and subscribe to (named services)', default: BENCH_TOPIC }),
    chart: Flags.string({ description: 'write the paper-style bar chart to this SVG file' }),
    ...benchGateFlags,
  }

  async run(): Promise<BenchLatencyResult> {
    const started = Date.now()
    const f = { ...this.flags }
    if (f.profile === 'ci') {
      const given = givenFlags((await this.parse(BenchLatency)).metadata, this.flags)
      for (const [k, v] of Object.entries(CI_PROFILE)) if (!given.has(k)) (f as Record<string, unknown>)[k] = v
    }
    // Everything a CI gate can get wrong is refused here, before any stack starts.
    if (f.summary && this.jsonEnabled() && !f['summary-file']) throw usageError('--summary with --json needs --summary-file (stdout is the JSON result)')
    const gate = prepareGate({ thresholds: f.threshold, baseline: f.baseline, tolerance: f.tolerance, catalogue: latencyCatalogue(), command: 'bench latency' })
    let transports: ('tcp' | 'tls')[] = f.transport === 'both' ? ['tcp', 'tls'] : [f.transport as 'tcp' | 'tls']
    const notes: string[] = []
    let stack: BenchStack | undefined
    let targets: LatencyTargets
    let key: string, chainId: number, contract: string
    if (f.broker || f.proxy) {
      if (!f.broker || !f.proxy) throw usageError('name both --broker and --proxy (and optionally --relay), or neither for the self-contained run')
      const by = (url: string | undefined, flag: string) => (url ? parseTarget(url, flag, f.ca) : undefined)
      const direct = by(f.broker, '--broker')!
      const proxy = by(f.proxy, '--proxy')!
      const relay = by(f.relay, '--relay')
      const transport = direct.tls ? 'tls' : 'tcp'
      targets = { tcp: {}, tls: {} }
      targets[transport] = { direct, flytrap: proxy, relay, 'flytrap-relaxed': by(f['proxy-relaxed'], '--proxy-relaxed'), 'flytrap-nojournal': by(f['proxy-nojournal'], '--proxy-nojournal'), 'flytrap-alldeliveries': by(f['proxy-alldeliveries'], '--proxy-alldeliveries') }
      transports = [transport] // named services: the transport their URLs say
      const signer = await this.keyOnly()
      key = signer.privateKey
      chainId = (await this.chain()).chainId
      contract = await this.contractAddress()
      if (!relay) notes.push('no --relay: the relay reference is skipped')
    } else {
      const journalModes = f['journal-modes'] && transports.includes('tcp')
      stack = await this.spin('Starting anvil, contract, mosquitto, proxy and HAProxy', (s) => startBenchStack({ journalModes, onStep: (t) => (s.text = t) }))
      const t = stack.targets
      targets = {
        tcp: { direct: t.direct, flytrap: t.flytrap, relay: t.relay, 'node-relay': t.nodeRelay, 'flytrap-relaxed': t.flytrapRelaxed, 'flytrap-nojournal': t.flytrapNoJournal, 'flytrap-alldeliveries': t.flytrapAllDeliveries },
        tls: { direct: t.directTls, flytrap: t.flytrapTls, relay: t.relayTls },
      }
      key = stack.key
      chainId = stack.chainId
      contract = stack.contract
      if (stack.relaySkipped) notes.push(stack.relaySkipped)
    }
    let result: LatencyResult
    try {
      result = await this.spin('Measuring', (s) =>
        runLatencyBench({
          targets,
          key,
          chainId,
          contract,
          topic: f.topic,
          count: f.count,
          warmup: f.warmup,
          pipeline: f.pipeline,
          window: f.window,
          transports: [...transports],
          onProgress: (done, total, what) => (s.text = `Measuring: ${what} (${Math.round((done / total) * 100)} %)`),
        }),
      )
    } catch (err) {
      throw err instanceof FlytrapError ? err : new FlytrapError(`benchmark failed: ${(err as Error).message}`, { exit: 'unreachable', cause: err })
    } finally {
      await stack?.stop()
    }
    const out: BenchLatencyResult = {
      mode: stack ? 'self-contained' : 'named',
      notes,
      machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version },
      ...result,
      metrics: latencyMetrics(result),
      ...(f.profile ? { profile: 'ci' as const } : {}),
      seconds: (Date.now() - started) / 1000,
    }
    if (f.chart) writeFileSync(f.chart, latencyChart(result))
    const verdict = runGate(gate, out)
    if (gateUsed(gate)) Object.assign(out, { thresholds: verdict.thresholds, baseline: verdict.baseline })
    this.render(out)
    for (const t of gateRows(verdict)) this.say(`\n${t.title}\n${table(t.head, t.rows)}`)
    this.say(`run time: ${out.seconds.toFixed(1)} s`)
    if (f.summary) {
      const m = out.metrics.tcp ?? Object.values(out.metrics)[0]
      const text = renderSummary(f.summary as SummaryFormat, {
        title: `flytrap bench latency${f.profile ? ` (profile ${f.profile})` : ''}`,
        seconds: out.seconds,
        gate: verdict,
        results: m
          ? [
              ['CONNECT added p50 (FlyTrap − direct)', m.connect.addedMs.p50, 'ms'],
              ['CONNECT added over relay', m.connect.addedOverRelayMs, 'ms'],
              ['PUBLISH (steady) added p50', m.publishSteady.addedMs.p50, 'ms'],
              ['pipelined QoS 1, FlyTrap', m.throughput?.flytrap, 'msg/s'],
              ['pipelined QoS 1, FlyTrap / direct', m.throughput?.ratioToDirect, ''],
              ['pipelined QoS 1, FlyTrap / relay', m.throughput?.ratioToRelay, ''],
              ['strict journal throughput share', m.journal?.strictShare, ''],
            ]
          : [],
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

  private render(r: BenchLatencyResult): void {
    const ms = (us: number) => (us / 1000).toFixed(3)
    for (const [transport, byTarget] of Object.entries(r.latency)) {
      const rows: (string | number)[][] = []
      for (const op of OPS) {
        for (const t of ['direct', 'relay', 'node-relay', 'flytrap', 'flytrap-relaxed', 'flytrap-nojournal', 'flytrap-alldeliveries'] as TargetName[]) {
          const s = byTarget[t]?.[op]
          if (s) rows.push([opLabel(op), t === 'flytrap' && byTarget['flytrap-relaxed'] ? 'flytrap (strict)' : t, ms(s.min), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max)])
        }
      }
      this.say(`\n${transport.toUpperCase()} (${r.count} samples after ${r.warmup} warm-up; ms)`)
      this.say(table(['packet', 'target', 'min', 'p50', 'p90', 'p99', 'max'], rows))
      const o = r.overhead[transport] ?? {}
      this.say(
        table(
          ['packet', 'FlyTrap / direct', 'relay / direct', 'FlyTrap added (ms)', 'HAProxy added (ms)', 'Node relay added (ms)', 'FlyTrap added / HAProxy added'],
          Object.entries(o).map(([op, v]) => [opLabel(op as Op), v!.flytrapOverDirect.toFixed(2), v!.relayOverDirect?.toFixed(2) ?? '-', ms(v!.flytrapAddedUs), v!.relayAddedUs !== undefined ? ms(v!.relayAddedUs) : '-', v!.nodeRelayAddedUs !== undefined ? ms(v!.nodeRelayAddedUs) : '-', v!.addedVsRelay?.toFixed(2) ?? '-']),
        ),
      )
      const thr = r.throughput[transport]
      if (thr) this.say(table(['pipelined QoS 1', ...Object.keys(thr)], [['messages/s', ...Object.values(thr).map((v) => Math.round(v!))]]))
      const dthr = r.deliveryThroughput[transport]
      if (dthr) this.say(table(['pipelined QoS 1, one subscriber', ...Object.keys(dthr)], [['messages/s', ...Object.values(dthr).map((v) => Math.round(v!))]]))
      const j = r.journalSync[transport]
      if (j) {
        const cell = (v: number | undefined, f: (x: number) => string) => (v === undefined ? '-' : f(v))
        this.say(
          table(
            ['journal sync', 'strict', 'relaxed', 'no journal', 'strict, all deliveries'],
            [
              ['PUBLISH p50 (ms)', ...MODES.map((m) => cell(j.publishP50[m], ms))],
              ['PUBLISH (steady) p50 (ms)', ...MODES.map((m) => cell(j.publishSteadyP50[m], ms))],
              ['pipelined QoS 1 (messages/s)', ...MODES.map((m) => cell(j.throughput[m], (v) => String(Math.round(v))))],
              ['… with one subscriber (messages/s)', ...MODES.map((m) => cell(j.deliveryThroughput[m], (v) => String(Math.round(v))))],
            ],
          ),
        )
        this.say(`strict adds ${cell(j.strictAddedUs, ms)} ms p50 to a steady QoS 1 round trip (target ≤ 1 ms) and keeps ${cell(j.strictThroughputShare, (v) => `${Math.round(v * 100)} %`)} of relaxed throughput (target ≥ 80 %)`)
      }
    }
    for (const n of r.notes) this.say(`note: ${n}`)
  }
}

const MODES = ['strict', 'relaxed', 'off', 'all'] as const

function opLabel(op: Op): string {
  return { connect: 'CONNECT', subscribe: 'SUBSCRIBE', publish: 'PUBLISH', session: 'whole session', publishSteady: 'PUBLISH (steady)' }[op]
}
