import { Flags } from '@oclif/core'
import { BaseCommand } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { runSyncBench, type SyncBenchResult } from '../../lib/bench/sync.js'
import { FlytrapError } from '../../lib/errors.js'

export interface BenchSyncResult extends SyncBenchResult {
  /** The targets: loaded in ≤ 5 s, held in ≤ 100 MiB. */
  targets: { syncSeconds: number; policyMiB: number; met: boolean }
}

export default class BenchSync extends BaseCommand<typeof BenchSync> {
  static override summary = 'Cold start: how long a proxy takes to load a big policy from a local node, and the memory it holds.'
  static override description = `Starts anvil, deploys the contract and writes the history (--topics topics, --grants grants spread over
them, packed into blocks), then starts a real \`flytrap proxy start\` (its own process, against mosquitto) and
reports its cold start from its own 'policy loaded' log line, and its resident memory beside the same proxy on an
empty contract. Targets: loaded in ≤ 5 s, held in ≤ 100 MiB.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --topics 1000 --grants 10000 --json']
  static override flags = {
    topics: Flags.integer({ description: 'topics to register', default: 10_000, min: 1, max: 1_000_000 }),
    grants: Flags.integer({ description: 'grants to write, spread over the topics', default: 100_000, min: 0, max: 10_000_000 }),
    'per-block': Flags.integer({ description: 'transactions per mined block while writing the history', default: 250, min: 1, max: 5_000 }),
  }

  async run(): Promise<BenchSyncResult> {
    const f = this.flags
    let r: SyncBenchResult
    try {
      r = await this.spin('Measuring a cold start', (s) => runSyncBench({ topics: f.topics, grants: f.grants, perBlock: f['per-block'], onProgress: (t) => (s.text = t) }))
    } catch (err) {
      throw err instanceof FlytrapError ? err : new FlytrapError(`benchmark failed: ${(err as Error).message}`, { exit: 'unreachable', cause: err })
    }
    const out: BenchSyncResult = { ...r, targets: { syncSeconds: 5, policyMiB: 100, met: r.syncSeconds <= 5 && r.policyMiB <= 100 } }
    this.say(
      record([
        ['history', `${r.topics} topics, ${r.grants} grants in ${r.blocks} blocks, written in ${r.deploySeconds.toFixed(1)} s`],
        ['loaded', `${r.topicsLoaded} topics, ${r.grantsLoaded} grants`],
        ['cold start', `${r.syncSeconds.toFixed(2)} s (target ≤ 5 s); process start to loaded ${r.processToSyncedSeconds.toFixed(2)} s`],
        ['memory', `${r.proxyRssMiB.toFixed(1)} MiB resident, ${r.emptyProxyRssMiB.toFixed(1)} MiB on an empty contract: the policy holds ${r.policyMiB.toFixed(1)} MiB (target ≤ 100 MiB)`],
      ]),
    )
    return out
  }
}
