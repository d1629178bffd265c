import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { FlytrapError } from '../../lib/errors.js'
import { checkTopicName } from '../../lib/policy/topic-name.js'

export interface TopicRemoveResult {
  topic: string
  tx: TxJson
}

export default class TopicRemove extends ChainCommand<typeof TopicRemove> {
  static override description = 'Remove a topic you own; every grant on it ends at once and the name can be registered again'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/old --reason "retired"', '<%= config.bin %> <%= command.id %> sensors/old --yes --json']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = { yes: Flags.boolean({ char: 'y', description: 'remove without asking (needed without a terminal)' }), ...reasonFlags }

  async run(): Promise<TopicRemoveResult> {
    const name = checkTopicName(await this.need(this.args.topic, 'TOPIC', 'Topic'))
    const c = await this.client({ write: true })
    if (!(await c.topic(name))) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage', suggestions: ['list topics with `flytrap topic list`'] })
    await this.confirmOrRefuse(`Remove ${name}? Every grant on it ends at once`, this.flags.yes)
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'remove', topic: name })).reason
    const tx = await this.spin(`Removing ${name}`, () => c.removeTopic(name, reason))
    this.say(`${name} removed (tx ${tx.hash})`)
    return { topic: name, tx: txJson(tx) }
  }
}
