import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { FOREVER, parseAddress, roleMask, roleNames, type RoleMask } from '../../lib/chain/codec.js'
import { FlytrapError } from '../../lib/errors.js'
import { checkTopicName } from '../../lib/policy/topic-name.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'

export interface TopicRevokeResult {
  topic: string
  client: string
  roles: string[]
  /** The commitment sent instead of the reason (--reason-private), else null. */
  reasonCommitment: string | null
  tx: TxJson
}

export default class TopicRevoke extends ChainCommand<typeof TopicRevoke> {
  static override description = 'Take publish and/or subscribe rights away at once (both when no role is given)'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "device stolen"']
  static override args = { topic: Args.string({ description: 'topic name or filter' }), address: Args.string({ description: 'client address' }) }
  static override flags = {
    pub: Flags.boolean({ description: 'revoke publishing' }),
    sub: Flags.boolean({ description: 'revoke subscribing' }),
    ...reasonFlags,
  }

  async run(): Promise<TopicRevokeResult> {
    const name = checkTopicName(await this.need(this.args.topic, 'TOPIC', 'Topic'))
    const client = parseAddress(await this.need(this.args.address, 'ADDRESS', 'Client address'), 'client')
    const both = !this.flags.pub && !this.flags.sub
    const c = await this.client({ write: true })
    // Read the grant first: revoking what a client does not hold would spend a transaction and claim a change.
    if (!(await c.topic(name))) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage', suggestions: ['list topics with `flytrap topic list`'] })
    const grant = await c.member(name, client)
    const now = BigInt(Math.floor(Date.now() / 1000))
    const holds = (expiry: bigint) => expiry === FOREVER || expiry > now
    const held = (holds(grant.pubExpiry) ? 1 : 0) | (holds(grant.subExpiry) ? 2 : 0)
    const asked = roleMask(both || this.flags.pub, both || this.flags.sub)
    const roles = (both ? held : asked) as RoleMask
    if (held === 0) throw new FlytrapError(`${client} is not a member of ${name}: nothing to revoke`, { exit: 'usage', code: 'FLYTRAP_NOT_MEMBER', suggestions: [`see the members with \`flytrap topic show ${name}\``] })
    if ((asked & ~held) !== 0 && !both) throw new FlytrapError(`${client} may not ${roleNames(asked & ~held).join(' or ')} on ${name}: nothing to revoke there`, { exit: 'usage', code: 'FLYTRAP_NOT_MEMBER' })
    const why = await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'revoke', topic: name, client })
    const tx = await this.spin(`Revoking ${roleNames(roles).join('+')} on ${name}`, () => c.revoke(name, client, roles, why.reason))
    this.say(`${client} may no longer ${roleNames(roles).join(' or ')} on ${name} (tx ${tx.hash})`)
    if (why.commitment) this.say(`the reason went on chain as commitment ${why.commitment}; its text and salt are in ${why.reasonsFile}`)
    return { topic: name, client, roles: roleNames(roles), reasonCommitment: why.commitment, tx: txJson(tx) }
  }
}
