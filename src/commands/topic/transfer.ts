import { Args, Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'

export interface TopicTransferResult {
  topic: string
  newOwner: string
  tx: TxJson
}

export default class TopicTransfer extends ChainCommand<typeof TopicTransfer> {
  static override description = 'Hand a topic you own to another address (grants and fees stay)'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --reason "sold to ACME"']
  static override args = { topic: Args.string({ description: 'topic name or filter' }), address: Args.string({ description: 'new owner' }) }
  static override flags = { reason: Flags.string({ description: 'why (recorded on chain)', default: '' }) }

  async run(): Promise<TopicTransferResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const to = parseAddress(await this.need(this.args.address, 'ADDRESS', 'New owner'), 'new owner')
    const c = await this.client({ write: true })
    const tx = await this.spin(`Transferring ${name}`, () => c.transferTopic(name, to, this.flags.reason))
    this.say(`${name} now belongs to ${to} (tx ${tx.hash})`)
    return { topic: name, newOwner: to, tx: txJson(tx) }
  }
}
