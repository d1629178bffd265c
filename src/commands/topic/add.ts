import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { encodeCountries, parseFee } from '../../lib/chain/codec.js'
import { parseDurationSec } from '../../lib/parse/units.js'
import { topicJson, txJson, type TopicJson, type TxJson } from '../../lib/chain/json.js'
import { explainNamespaceRefusal, isNamespaceRefusal, senderOf } from '../../lib/policy/namespace-refusal.js'
import { checkTopicName } from '../../lib/policy/topic-name.js'

export interface TopicAddResult {
  topic: TopicJson
  tx: TxJson
}

export default class TopicAdd extends ChainCommand<typeof TopicAdd> {
  static override description = 'Register a topic (an exact MQTT topic or a filter with + and #) owned by your key'
  static override examples = [
    '<%= config.bin %> <%= command.id %> sensors/temp --sub-fee 0.01 --open --reason "public weather feed"',
    '<%= config.bin %> <%= command.id %> "factory/+/alarms" --sensitive --country GB --country DE --closed',
    '<%= config.bin %> <%= command.id %> telemetry/# --pub-fee 0.001 --sub-fee 0.002 --open --period 30d',
  ]
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = {
    'pub-fee': Flags.string({ description: 'fee in ETH to join as publisher', default: '0' }),
    'sub-fee': Flags.string({ description: 'fee in ETH to join as subscriber', default: '0' }),
    sensitive: Flags.boolean({ description: 'flag the topic as sensitive (its publishers and receivers are reported on chain)' }),
    country: Flags.string({ description: 'allowed ISO 3166 country code (repeatable; none = anywhere)', multiple: true }),
    open: Flags.boolean({ description: 'anyone may join by paying the fee (a fee of 0 = free self-service)', exclusive: ['closed'] }),
    closed: Flags.boolean({ description: 'only the owner grants access (default)', exclusive: ['open'] }),
    period: Flags.string({ description: 'access one join payment buys, e.g. 30d (default: permanent)' }),
    ...reasonFlags,
  }

  async run(): Promise<TopicAddResult> {
    const name = checkTopicName(await this.need(this.args.topic, 'TOPIC', 'Topic name or filter'))
    const pubFee = parseFee(this.flags['pub-fee'], '--pub-fee')
    const subFee = parseFee(this.flags['sub-fee'], '--sub-fee')
    const countries = encodeCountries(this.flags.country ?? [])
    const period = this.flags.period === undefined ? 0 : parseDurationSec(this.flags.period, '--period', { min: 1, max: 2 ** 32 - 1 })

    const client = await this.client({ write: true })
    const { registrationFee } = await client.info()
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'add', topic: name })).reason
    const tx = await this.spin(`Registering ${name}`, () =>
      client.addTopic({ name, pubFee, subFee, sensitive: this.flags.sensitive, open: this.flags.open, period, countries, reason, value: registrationFee }),
    ).catch(async (err: unknown) => {
      // Refused by the contract's namespace check during gas estimation: nothing was sent. Say what it overlaps.
      if (isNamespaceRefusal(err)) throw await explainNamespaceRefusal(client, 'topic add', [name], await senderOf(client), err)
      throw err
    })
    const topic = await client.topic(name)
    if (!topic) throw new Error(`topic ${name} is missing right after registration`)
    const json = topicJson(topic)
    this.say(record([['topic', name], ['owner', json.owner], ['publish fee', `${json.pubFeeEth} ETH`], ['subscribe fee', `${json.subFeeEth} ETH`], ['open', String(json.open)], ['sensitive', String(json.sensitive)], ['countries', json.countries.join(' ') || 'anywhere'], ['tx', tx.hash]]))
    return { topic: json, tx: txJson(tx) }
  }
}
