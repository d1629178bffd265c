import { Args } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { record, table } from '../../lib/cli/output.js'
import { memberJson, topicJson, type MemberJson, type TopicJson } from '../../lib/chain/json.js'
import { FlytrapError } from '../../lib/errors.js'
import { checkTopicName } from '../../lib/policy/topic-name.js'
import { deploymentFor } from '../../lib/config/project-dir.js'

export interface TopicShowResult {
  topic: TopicJson
  members: MemberJson[]
}

export default class TopicShow extends ChainCommand<typeof TopicShow> {
  static override description = 'Show a topic: owner, fees, countries, flags and every member with expiry'
  static override examples = ['<%= config.bin %> <%= command.id %> sensors/temp', '<%= config.bin %> <%= command.id %> sensors/temp --json']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }

  async run(): Promise<TopicShowResult> {
    const name = checkTopicName(await this.need(this.args.topic, 'TOPIC', 'Topic'))
    const c = await this.client()
    const t = await c.topic(name)
    if (!t) throw new FlytrapError(`no topic "${name}"`, { exit: 'usage', suggestions: ['list topics with `flytrap topic list`'] })
    const { chainId } = await this.chain()
    const fromBlock = deploymentFor(chainId)?.address.toLowerCase() === c.address.toLowerCase() ? deploymentFor(chainId)?.block : undefined
    const members = (await this.spin('Reading members', () => c.members(name, { fromBlock }))).map((m) => memberJson(m))
    const topic = topicJson(t)
    this.say(
      record([
        ['topic', topic.name],
        ['owner', topic.owner],
        ['publish fee', `${topic.pubFeeEth} ETH`],
        ['subscribe fee', `${topic.subFeeEth} ETH`],
        ['access bought per payment', topic.periodSeconds ? `${topic.periodSeconds} s` : 'permanent'],
        ['join', topic.open ? 'open (pay the fee)' : 'closed (owner grants)'],
        ['sensitive', topic.sensitive ? 'yes' : 'no'],
        ['countries', topic.countries.join(' ') || 'anywhere'],
      ]),
    )
    const live = members.filter((m) => m.publish || m.subscribe)
    this.say(live.length ? table(['member', 'publish until', 'subscribe until'], live.map((m) => [m.client, m.publish ? m.pubExpiry : '-', m.subscribe ? m.subExpiry : '-'])) : 'no members')
    return { topic, members }
  }
}
