import { Args, Flags } from '@oclif/core'
import { ChainCommand } from '../../../lib/cli/base.js'
import { parseAddress } from '../../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../../lib/chain/json.js'

export interface ContractReporterAddResult {
  reporter: string
  /** False when it was a reporter already: nothing was sent. */
  changed: boolean
  tx: TxJson | null
}

export default class ContractReporterAdd extends ChainCommand<typeof ContractReporterAdd> {
  static override description = 'Register a reporter (a proxy key) that may record bans, summaries, sensitive reports and anchors (contract admin only)'
  static override examples = ['<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "proxy eu-1"', '<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json']
  static override args = { address: Args.string({ description: 'reporter address' }) }
  static override flags = { reason: Flags.string({ description: 'why (recorded on chain)', default: '' }) }

  async run(): Promise<ContractReporterAddResult> {
    const reporter = parseAddress(await this.need(this.args.address, 'ADDRESS', 'Reporter address'), 'reporter')
    const client = await this.client({ write: true })
    if (await client.isReporter(reporter)) {
      this.say(`${reporter} is a registered reporter already: nothing sent`)
      return { reporter, changed: false, tx: null }
    }
    const reason = (await this.onChainReason(this.flags.reason, { private: false, action: 'reporter add', topic: '' })).reason
    const tx = await this.spin('Sending transaction', () => client.addReporter(reporter, reason))
    this.say(`reporter ${reporter} registered (tx ${tx.hash})`)
    return { reporter, changed: true, tx: txJson(tx) }
  }
}
