import { writeFileSync } from 'node:fs'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { REVOKE_MODES, runRevokeBench, type RevokeBenchResult, type RevokeMode } from '../../lib/bench/revoke.js'
import { ExitCode, FlytrapError, usageError } from '../../lib/errors.js'
import { benchGateFlags, givenFlags } from '../../lib/cli/bench-flags.js'
import { gateFailure, gateRows, gateUsed, prepareGate, runGate, type GateResult } from '../../lib/bench/gate.js'
import { revokeCatalogue, revokeMetrics, type RevokeMetrics } from '../../lib/bench/metrics.js'
import { renderSummary, type SummaryFormat } from '../../lib/bench/summary.js'
import { parseDuration } from '../../lib/parse/units.js'
import { DEFAULTS } from '../../lib/proxy/options.js'

export interface BenchRevokeResult extends RevokeBenchResult {
  /** The stable numbers --threshold and --baseline name: `subscription.p50Ms`, `polling.p95Ms`, `speedupP50` … */
  metrics: RevokeMetrics
  profile?: 'ci'
  seconds: number
  thresholds?: GateResult['thresholds']
  baseline?: GateResult['baseline']
}

const CI_PROFILE = { samples: 10 } as const

export default class BenchRevoke extends BaseCommand<typeof BenchRevoke> {
  static override summary = 'Revocation latency: from the revoke transaction to the live session\'s DISCONNECT, with eth_subscribe and with polling.'
  static override description = `Starts anvil, the contract, mosquitto and two real \`flytrap proxy start\` processes: one with --rpc-ws (anvil's
WebSocket: eth_subscribe logs wake the policy poll) and one polling every --poll-interval. Each sample is a live
MQTT 5 session whose will is on a topic it may publish to; revoking that right ends it (DISCONNECT 0x87). Measured
from the signed revoke transaction leaving for the node to the client reading the DISCONNECT, modes interleaved.
Automine by default; --block-time mines on an interval instead (the wait for the block is included).`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --samples 50 --poll-interval 1s --json > revoke.json',
    '<%= config.bin %> <%= command.id %> --block-time 2 --samples 20',
    '<%= config.bin %> <%= command.id %> --profile ci --threshold "subscription.p95Ms<500" --threshold "speedupP50>2"',
  ]
  static override flags = {
    samples: Flags.integer({ description: 'revocations measured per mode', default: 20, min: 1, max: 10_000 }),
    'poll-interval': Flags.string({ description: `the proxies' --poll-interval (500ms, 2s; a bare number is ms) [default: ${DEFAULTS.pollIntervalMs}]` }),
    'block-time': Flags.integer({ description: 'interval mining: a block every N seconds (anvil --block-time) instead of one per transaction', min: 1, max: 60 }),
    mode: Flags.string({ description: 'which proxies to measure', options: ['subscription', 'polling', 'both'], default: 'both' }),
    ...benchGateFlags,
  }

  async run(): Promise<BenchRevokeResult> {
    const started = Date.now()
    const f = { ...this.flags }
    if (f.profile === 'ci') {
      const given = givenFlags((await this.parse(BenchRevoke)).metadata, this.flags)
      for (const [k, v] of Object.entries(CI_PROFILE)) if (!given.has(k)) (f as Record<string, unknown>)[k] = v
    }
    if (f.summary && this.jsonEnabled() && !f['summary-file']) throw usageError('--summary with --json needs --summary-file (stdout is the JSON result)')
    const pollIntervalMs = f['poll-interval'] === undefined ? DEFAULTS.pollIntervalMs : parseDuration(f['poll-interval'], '--poll-interval', { min: 50, max: 3_600_000, bare: 'ms' })
    const gate = prepareGate({ thresholds: f.threshold, baseline: f.baseline, tolerance: f.tolerance, catalogue: revokeCatalogue(), command: 'bench revoke' })
    const modes: RevokeMode[] = f.mode === 'both' ? [...REVOKE_MODES] : [f.mode as RevokeMode]
    let r: RevokeBenchResult
    try {
      r = await this.spin('Measuring revocation latency', (s) => runRevokeBench({ samples: f.samples, pollIntervalMs, blockTimeSec: f['block-time'], modes, onProgress: (t) => (s.text = `Measuring revocation latency: ${t}`) }))
    } catch (err) {
      throw err instanceof FlytrapError ? err : new FlytrapError(`benchmark failed: ${(err as Error).message}`, { exit: 'unreachable', cause: err })
    }
    const out: BenchRevokeResult = { ...r, metrics: revokeMetrics(r), ...(f.profile ? { profile: 'ci' as const } : {}), seconds: (Date.now() - started) / 1000 }
    const verdict = runGate(gate, out)
    if (gateUsed(gate)) Object.assign(out, { thresholds: verdict.thresholds, baseline: verdict.baseline })

    const ms = (v: number) => v.toFixed(1)
    this.say(`\nrevoke transaction → DISCONNECT on the live session (ms; ${r.samples} samples per mode, poll interval ${r.pollIntervalMs} ms, ${r.blockTimeSec ? `a block every ${r.blockTimeSec} s` : 'automine'})`)
    this.say(table(['mode', 'min', 'p50', 'p95', 'max', 'mean'], Object.entries(r.modes).map(([m, s]) => [m, ms(s.min), ms(s.p50), ms(s.p95), ms(s.max), ms(s.mean)])))
    if (out.metrics.speedupP50 !== undefined) this.say(`subscription is ${out.metrics.speedupP50.toFixed(1)}× faster at p50`)
    for (const t of gateRows(verdict)) this.say(`\n${t.title}\n${table(t.head, t.rows)}`)
    if (f.summary) {
      const m = out.metrics
      const text = renderSummary(f.summary as SummaryFormat, {
        title: `flytrap bench revoke${f.profile ? ` (profile ${f.profile})` : ''}`,
        seconds: out.seconds,
        gate: verdict,
        results: [
          ['revoke → DISCONNECT p50, subscription', m.subscription?.p50Ms, 'ms'],
          ['revoke → DISCONNECT p95, subscription', m.subscription?.p95Ms, 'ms'],
          ['revoke → DISCONNECT p50, polling', m.polling?.p50Ms, 'ms'],
          ['revoke → DISCONNECT p95, polling', m.polling?.p95Ms, 'ms'],
        ],
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
