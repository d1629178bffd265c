import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { formatExpiry, parseAddress, roleNames } from '../../lib/chain/codec.js'
import { parseDateSec } from '../../lib/parse/units.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { usageError } from '../../lib/errors.js'

export interface TopicAllowResult {
  topic: string
  client: string
  roles: string[]
  expires: string
  /** The commitment sent instead of the reason (--reason-private), else null. */
  reasonCommitment: string | null
  tx: TxJson
}

export default class TopicAllow extends ChainCommand<typeof TopicAllow> {
  static override description = 'Grant a device or user the right to publish and/or subscribe (topic owner only)'
  static override examples = [
    '<%= config.bin %> <%= command.id %> sensors/temp 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --pub --reason "sensor 17 installed"',
    '<%= config.bin %> <%= command.id %> sensors/temp 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC --sub --until 2027-06-30',
  ]
  static override args = { topic: Args.string({ description: 'topic name or filter' }), address: Args.string({ description: 'client address' }) }
  static override flags = {
    pub: Flags.boolean({ description: 'may publish' }),
    sub: Flags.boolean({ description: 'may subscribe' }),
    until: Flags.string({ description: 'expiry: ISO date/time, unix seconds or a duration like 30d (default: until revoked)' }),
    ...reasonFlags,
  }

  async run(): Promise<TopicAllowResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    const client = parseAddress(await this.need(this.args.address, 'ADDRESS', 'Client address'), 'client')
    const roles = await this.needRoles(this.flags.pub, this.flags.sub)
    const expiresAt = this.flags.until ? parseDateSec(this.flags.until, '--until', { relative: 'future' }) : 0
    if (this.flags.until && expiresAt <= Math.floor(Date.now() / 1000)) throw usageError(`--until ${this.flags.until} is in the past`)
    const c = await this.client({ write: true })
    const why = await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'allow', topic: name, client })
    const tx = await this.spin(`Granting ${roleNames(roles).join('+')} on ${name}`, () => c.allow(name, client, roles, expiresAt, why.reason))
    const expires = expiresAt ? formatExpiry(expiresAt) : 'never'
    this.say(`${client} may ${roleNames(roles).join(' and ')} on ${name} until ${expires === 'never' ? 'revoked' : expires} (tx ${tx.hash})`)
    if (why.commitment) this.say(`the reason went on chain as commitment ${why.commitment}; its text and salt are in ${why.reasonsFile}`)
    return { topic: name, client, roles: roleNames(roles), expires, reasonCommitment: why.commitment, tx: txJson(tx) }
  }
}
