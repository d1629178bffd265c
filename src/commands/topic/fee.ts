import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { parseFee } from '../../lib/chain/codec.js'
import { parseDurationSec } from '../../lib/parse/units.js'
import { topicJson, txJson, type TopicJson, type TxJson } from '../../lib/chain/json.js'
import { FlytrapError, usageError } from '../../lib/errors.js'

export interface TopicFeeResult {
  topic: TopicJson
  tx: TxJson
}

export default class TopicFee extends ChainCommand<typeof TopicFee> {
  static override description = 'Change the publish/subscribe fees (and the period one payment buys) of a topic you own'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp --sub-fee 0.02', '<%= config.bin %> <%= command.id %> sensors/temp --pub-fee 0 --period 7d']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = {
    'pub-fee': Flags.string({ description: 'new publish fee in ETH (unchanged if omitted)' }),
    'sub-fee': Flags.string({ description: 'new subscribe fee in ETH (unchanged if omitted)' }),
    period: Flags.string({ description: 'access one payment buys, e.g. 30d, or "0" for permanent (unchanged if omitted)' }),
    ...reasonFlags,
  }

  async run(): Promise<TopicFeeResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const { flags } = this
    if (flags['pub-fee'] === undefined && flags['sub-fee'] === undefined && flags.period === undefined) throw usageError('nothing to change', 'pass --pub-fee, --sub-fee and/or --period')
    const client = await this.client({ write: true })
    const current = await client.topic(name)
    if (!current) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage', suggestions: ['list topics with `flytrap topic list`'] })
    const pubFee = flags['pub-fee'] === undefined ? current.pubFee : parseFee(flags['pub-fee'], '--pub-fee')
    const subFee = flags['sub-fee'] === undefined ? current.subFee : parseFee(flags['sub-fee'], '--sub-fee')
    const period = flags.period === undefined ? current.period : parseDurationSec(flags.period, '--period', { max: 2 ** 32 - 1 })
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'fee', topic: name })).reason
    const tx = await this.spin(`Updating fees of ${name}`, () => client.setFees(name, pubFee, subFee, period, reason))
    const topic = topicJson((await client.topic(name))!)
    this.say(`${name}: publish ${topic.pubFeeEth} ETH, subscribe ${topic.subFeeEth} ETH${period ? ` per ${period} s` : ''} (tx ${tx.hash})`)
    return { topic, tx: txJson(tx) }
  }
}
