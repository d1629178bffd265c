import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { explainNamespaceRefusal, isNamespaceRefusal } from '../../lib/policy/namespace-refusal.js'

export interface TopicTransferResult {
  topic: string
  /** Moved in the same transaction (--with). */
  with: string[]
  newOwner: string
  tx: TxJson
}

export default class TopicTransfer extends ChainCommand<typeof TopicTransfer> {
  static override description = 'Hand a topic you own to another address (grants and fees stay)'
  static override examples = [
    '<%= config.bin %> <%= command.id %> sensors/temp 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --reason "sold to ACME"',
    '<%= config.bin %> <%= command.id %> "plant/#" 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --with plant/valve --with plant/pump',
  ]
  static override args = { topic: Args.string({ description: 'topic name or filter' }), address: Args.string({ description: 'new owner' }) }
  static override flags = {
    ...reasonFlags,
    with: Flags.string({ description: 'another topic you own to move in the same transaction (repeatable): a filter and the names under it can only change owner together', multiple: true }),
  }

  async run(): Promise<TopicTransferResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const to = parseAddress(await this.need(this.args.address, 'ADDRESS', 'New owner'), 'new owner')
    const others = this.flags.with ?? []
    const names = [name, ...others]
    const c = await this.client({ write: true })
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'transfer', topic: name, client: to })).reason
    const tx = await this.spin(`Transferring ${names.join(', ')}`, () => (others.length === 0 ? c.transferTopic(name, to, reason) : c.transferTopics(names, to, reason))).catch(
      async (err: unknown) => {
        if (isNamespaceRefusal(err)) throw await explainNamespaceRefusal(c, 'topic transfer', names, to, err)
        throw err
      },
    )
    this.say(`${names.join(', ')} now ${names.length === 1 ? 'belongs' : 'belong'} to ${to} (tx ${tx.hash})`)
    return { topic: name, with: others, newOwner: to, tx: txJson(tx) }
  }
}
