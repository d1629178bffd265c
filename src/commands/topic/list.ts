import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { table } from '../../lib/cli/output.js'
import { parseAddress } from '../../lib/chain/codec.js'
import { topicJson, type TopicJson } from '../../lib/chain/json.js'

export interface TopicListResult {
  topics: TopicJson[]
}

export default class TopicList extends ChainCommand<typeof TopicList> {
  static override description = 'List registered topics with owner, fees, flags and countries'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --owner 0xf39F…2266 --json']
  static override flags = { owner: Flags.string({ description: 'only topics owned by this address' }) }

  async run(): Promise<TopicListResult> {
    const owner = this.flags.owner === undefined ? undefined : parseAddress(this.flags.owner, '--owner')
    const c = await this.client()
    let topics = (await this.spin('Reading topics', () => c.topics())).map(topicJson)
    if (owner) topics = topics.filter((t) => t.owner.toLowerCase() === owner!.toLowerCase())
    this.say(
      topics.length
        ? table(
            ['topic', 'owner', 'pub fee (ETH)', 'sub fee (ETH)', 'join', 'sensitive', 'countries'],
            topics.map((t) => [t.name, t.owner, t.pubFeeEth, t.subFeeEth, t.open ? 'open' : 'closed', t.sensitive ? 'yes' : 'no', t.countries.join(' ') || 'anywhere']),
          )
        : 'no topics registered',
    )
    return { topics }
  }
}
