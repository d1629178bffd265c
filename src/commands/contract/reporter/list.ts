import { Flags } from '@oclif/core'
import { ChainCommand } from '../../../lib/cli/base.js'
import { table } from '../../../lib/cli/output.js'
import { deploymentFor } from '../../../lib/config/project-dir.js'
import { loadReporterHistory } from '../../../lib/chain/reporters.js'
import { getAddress } from 'ethers'

export interface ContractReporterListResult {
  /** Registered now, per the contract's isReporter view. */
  reporters: string[]
  /** Registered once and removed since. */
  removed: string[]
  fromBlock: number
}

export default class ContractReporterList extends ChainCommand<typeof ContractReporterList> {
  static override description = 'List the registered reporters (proxy keys), and those removed since, from the contract\'s own events'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {
    'from-block': Flags.integer({ description: 'block to read reporter events from [default: the recorded deployment block, else 0]', min: 0, env: 'FLYTRAP_FROM_BLOCK' }),
  }

  async run(): Promise<ContractReporterListResult> {
    const client = await this.client()
    const { chainId } = await this.chain()
    const d = deploymentFor(chainId)
    const fromBlock = this.flags['from-block'] ?? (d && d.address.toLowerCase() === client.address.toLowerCase() ? d.block : 0)
    const history = await this.spin('Reading reporter events', () => loadReporterHistory(client, { fromBlock }))
    // The contract view decides the current state; the events only say who to ask about.
    const candidates = history.everRegistered().map((a) => getAddress(a))
    const active = await Promise.all(candidates.map((a) => client.isReporter(a)))
    const reporters = candidates.filter((_, i) => active[i])
    const removed = candidates.filter((_, i) => !active[i])
    this.say(
      candidates.length
        ? table(['reporter', 'state'], [...reporters.map((r) => [r, 'registered']), ...removed.map((r) => [r, 'removed'])])
        : 'no reporter registered',
    )
    return { reporters, removed, fromBlock }
  }
}
