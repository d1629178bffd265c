import { writeFileSync } from 'node:fs'
import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { scaleChart } from '../../lib/bench/chart.js'
import { runScaleBench, type ScaleResult } from '../../lib/bench/scale.js'
import { startBenchStack } from '../../lib/bench/bench-stack.js'
import { parseLevels } from '../../lib/bench/targets.js'

export interface BenchScaleResult extends ScaleResult {
  proxyWorkers: number
  notes: string[]
}

export default class BenchScale extends ChainCommand<typeof BenchScale> {
  static override description = `Concurrency: N distinct device keys connected at once through FlyTrap, then PUBLISH→PUBACK under that load

For each level: connection-establishment rate, PUBLISH→PUBACK round trips on random open sessions, and proxy and
broker resident memory per session (from /proc). Starts its own anvil, contract, mosquitto and proxy; load comes
from worker threads spread over several 127.0.0.x source addresses.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --clients 10,100,1000,10000 --proxy-workers 2 --chart scale.svg --json']
  static override flags = {
    clients: Flags.string({ description: 'concurrency levels (comma-separated)', default: '10,100,1000,10000' }),
    workers: Flags.integer({ description: 'load-generator worker threads [default: cores]', min: 1, max: 64 }),
    'proxy-workers': Flags.integer({ description: 'proxy processes (each holds two file descriptors per session)', default: 2, min: 1, max: 64 }),
    concurrency: Flags.integer({ description: 'connections each load worker opens at once', default: 200, min: 1 }),
    samples: Flags.integer({ description: 'PUBLISH → PUBACK samples per level', default: 200, min: 1 }),
    chart: Flags.string({ description: 'write the scale curve to this SVG file' }),
  }

  async run(): Promise<BenchScaleResult> {
    const f = this.flags
    const levels = parseLevels(f.clients)
    const notes = [
      'sessions publish to unregistered topics allowed by --unregistered allow: each key is new, so no per-key grant transactions are needed, and every publish still goes through the policy lookup',
    ]
    const stack = await this.spin('Starting anvil, contract, mosquitto and proxy', (s) =>
      startBenchStack({ proxyArgs: ['--unregistered', 'allow', '--workers', String(f['proxy-workers'])], onStep: (t) => (s.text = t) }),
    )
    let result: ScaleResult
    try {
      result = await this.spin('Scaling', (s) =>
        runScaleBench({
          target: stack.targets.flytrap,
          chainId: stack.chainId,
          contract: stack.contract,
          levels,
          workers: f.workers,
          concurrency: f.concurrency,
          samples: f.samples,
          topicPrefix: 'scale',
          pids: { proxy: [stack.pids.proxy], broker: stack.pids.broker },
          onProgress: (t) => (s.text = t),
        }),
      )
    } finally {
      await stack.stop()
    }
    const out: BenchScaleResult = { ...result, proxyWorkers: f['proxy-workers'], notes }
    if (f.chart) writeFileSync(f.chart, scaleChart(result))
    const ms = (us: number) => (us / 1000).toFixed(3)
    this.say(
      table(
        ['clients', 'connected', 'connects/s', 'PUBLISH p50 (ms)', 'p99 (ms)', 'proxy MiB', 'proxy KiB/session', 'broker KiB/session'],
        out.levels.map((l) => [l.clients, l.connected, Math.round(l.connectRate), ms(l.publish.p50), ms(l.publish.p99), l.memory.proxyMiB.toFixed(0), l.memory.proxyKiBPerSession.toFixed(1), l.memory.brokerKiBPerSession.toFixed(1)]),
      ),
    )
    this.say(`load: ${out.workers} worker threads over ${out.sources.join(', ')}; proxy: ${out.proxyWorkers} process(es)`)
    for (const l of out.levels) if (l.failed) this.say(`${l.clients}: ${l.failed} failed: ${JSON.stringify(l.errors)}`)
    for (const n of notes) this.say(`note: ${n}`)
    return out
  }
}
