import { Args, Flags } from '@oclif/core'
import { ChainCommand } from '../../../lib/cli/base.js'
import { parseAddress } from '../../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../../lib/chain/json.js'

export interface ContractReporterAddResult {
  reporter: string
  tx: TxJson
}

export default class ContractReporterAdd extends ChainCommand<typeof ContractReporterAdd> {
  static override description = 'Register a reporter (a proxy key) that may record bans, summaries, sensitive reports and anchors (contract admin only)'
  static override examples = ['<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "proxy eu-1"']
  static override args = { address: Args.string({ description: 'reporter address' }) }
  static override flags = { reason: Flags.string({ description: 'why (recorded on chain)', default: '' }) }

  async run(): Promise<ContractReporterAddResult> {
    const reporter = parseAddress(await this.need(this.args.address, 'ADDRESS', 'Reporter address'), 'reporter')
    const client = await this.client({ write: true })
    const reason = (await this.onChainReason(this.flags.reason, { private: false, action: 'reporter add', topic: '' })).reason
    const tx = await this.spin('Sending transaction', () => client.addReporter(reporter, reason))
    this.say(`reporter ${reporter} registered (tx ${tx.hash})`)
    return { reporter, tx: txJson(tx) }
  }
}
