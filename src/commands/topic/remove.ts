import { Args } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'

export interface TopicRemoveResult {
  topic: string
  tx: TxJson
}

export default class TopicRemove extends ChainCommand<typeof TopicRemove> {
  static override description = 'Remove a topic you own; every grant on it ends at once and the name can be registered again'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/old --reason "retired"']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = { ...reasonFlags }

  async run(): Promise<TopicRemoveResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const c = await this.client({ write: true })
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'remove', topic: name })).reason
    const tx = await this.spin(`Removing ${name}`, () => c.removeTopic(name, reason))
    this.say(`${name} removed (tx ${tx.hash})`)
    return { topic: name, tx: txJson(tx) }
  }
}
