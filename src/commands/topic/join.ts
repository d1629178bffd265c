import { Args, Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { formatExpiry, formatFee, parseFee, roleNames } from '../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { FlytrapError, usageError } from '../../lib/errors.js'

export interface TopicJoinResult {
  topic: string
  client: string
  roles: string[]
  paidEth: string
  expires: string
  tx: TxJson
}

export default class TopicJoin extends ChainCommand<typeof TopicJoin> {
  static override description = 'Join an open topic as publisher and/or subscriber, paying exactly its fee to the owner'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp --sub', '<%= config.bin %> <%= command.id %> telemetry/# --pub --sub --periods 3']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = {
    pub: Flags.boolean({ description: 'join as publisher' }),
    sub: Flags.boolean({ description: 'join as subscriber' }),
    periods: Flags.integer({ description: 'for topics that sell time: how many periods to buy', default: 1, min: 1 }),
    'max-fee': Flags.string({ description: 'refuse to pay more than this many ETH' }),
  }

  async run(): Promise<TopicJoinResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const roles = await this.needRoles(this.flags.pub, this.flags.sub)
    const c = await this.client({ write: true })
    const topic = await c.topic(name)
    if (!topic) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage', suggestions: ['list topics with `flytrap topic list`'] })
    if (!topic.open) throw new FlytrapError(`${name} is closed: only its owner (${topic.owner}) can grant access`, { exit: 'reverted', code: 'NotOpen' })
    if (topic.period === 0 && this.flags.periods !== 1) throw usageError(`${name} sells permanent access: --periods must be 1`)
    const price = ((roles & 1 ? topic.pubFee : 0n) + (roles & 2 ? topic.subFee : 0n)) * BigInt(this.flags.periods)
    if (this.flags['max-fee'] !== undefined && price > parseFee(this.flags['max-fee'], '--max-fee')) {
      throw usageError(`the price is ${formatFee(price)} ETH, above --max-fee ${this.flags['max-fee']}`)
    }
    const chain = await this.publicChain()
    if (chain.public) this.stderrWarning(`chain ${chain.chainId} is public: that your address joined ${name}, and what it paid, will be readable by anyone, permanently`)
    const tx = await this.spin(`Joining ${name} for ${formatFee(price)} ETH`, () => c.join(name, roles, this.flags.periods, price))
    const joined = tx.events.find((e) => e.name === 'Joined')
    const expires = formatExpiry((joined?.args[roles & 2 ? 'subExpiresAt' : 'pubExpiresAt'] as bigint | undefined) ?? 0n)
    const signer = await this.signer()
    this.say(`${signer.address} joined ${name} to ${roleNames(roles).join(' and ')} for ${formatFee(price)} ETH, until ${expires === 'never' ? 'revoked' : expires} (tx ${tx.hash})`)
    return { topic: name, client: signer.address, roles: roleNames(roles), paidEth: formatFee(price), expires, tx: txJson(tx) }
  }
}
