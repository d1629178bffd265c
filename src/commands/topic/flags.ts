import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { FlytrapError, usageError } from '../../lib/errors.js'

export interface TopicFlagsResult {
  topic: string
  sensitive: boolean
  open: boolean
  tx: TxJson
}

export default class TopicFlags extends ChainCommand<typeof TopicFlags> {
  static override description = 'Mark a topic sensitive or not, open (self-service join) or closed'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp --sensitive', '<%= config.bin %> <%= command.id %> sensors/temp --closed --no-sensitive']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = {
    sensitive: Flags.boolean({ description: 'report publishers and receivers on chain', allowNo: true }),
    open: Flags.boolean({ description: 'anyone may join by paying the fee', exclusive: ['closed'] }),
    closed: Flags.boolean({ description: 'only the owner grants access', exclusive: ['open'] }),
    ...reasonFlags,
  }

  async run(): Promise<TopicFlagsResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const { flags } = this
    if (flags.sensitive === undefined && !flags.open && !flags.closed) throw usageError('nothing to change', 'pass --sensitive/--no-sensitive and/or --open/--closed')
    const client = await this.client({ write: true })
    const current = await client.topic(name)
    if (!current) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage' })
    const next = { sensitive: flags.sensitive ?? current.sensitive, open: flags.open ? true : flags.closed ? false : current.open }
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'flags', topic: name })).reason
    const tx = await this.spin(`Updating ${name}`, () => client.setFlags(name, next, reason))
    this.say(`${name}: ${next.sensitive ? 'sensitive' : 'not sensitive'}, ${next.open ? 'open' : 'closed'} (tx ${tx.hash})`)
    return { topic: name, ...next, tx: txJson(tx) }
  }
}
