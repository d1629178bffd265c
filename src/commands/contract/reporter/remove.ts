import { Args, Flags } from '@oclif/core'
import { ChainCommand } from '../../../lib/cli/base.js'
import { parseAddress } from '../../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../../lib/chain/json.js'

export interface ContractReporterRemoveResult {
  reporter: string
  /** False when it was not a reporter: nothing was sent. */
  changed: boolean
  tx: TxJson | null
}

export default class ContractReporterRemove extends ChainCommand<typeof ContractReporterRemove> {
  static override description = 'Remove a reporter (contract admin only)'
  static override examples = ['<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "proxy eu-1"']
  static override args = { address: Args.string({ description: 'reporter address' }) }
  static override flags = { reason: Flags.string({ description: 'why (recorded on chain)', default: '' }) }

  async run(): Promise<ContractReporterRemoveResult> {
    const reporter = parseAddress(await this.need(this.args.address, 'ADDRESS', 'Reporter address'), 'reporter')
    const client = await this.client({ write: true })
    if (!(await client.isReporter(reporter))) {
      this.say(`${reporter} is not a registered reporter: nothing sent`)
      return { reporter, changed: false, tx: null }
    }
    const reason = (await this.onChainReason(this.flags.reason, { private: false, action: 'reporter remove', topic: '' })).reason
    const tx = await this.spin('Sending transaction', () => client.removeReporter(reporter, reason))
    this.say(`reporter ${reporter} removed (tx ${tx.hash})`)
    return { reporter, changed: true, tx: txJson(tx) }
  }
}
