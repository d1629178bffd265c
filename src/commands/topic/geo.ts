import { Args, Flags } from '@oclif/core'
import { ChainCommand, reasonFlags } from '../../lib/cli/base.js'
import { encodeCountries, decodeCountries } from '../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { usageError } from '../../lib/errors.js'

export interface TopicGeoResult {
  topic: string
  countries: string[]
  tx: TxJson
}

export default class TopicGeo extends ChainCommand<typeof TopicGeo> {
  static override description = 'Set the countries a topic may be used from (ISO 3166 alpha-2), or allow anywhere'
  static override examples = ['<%= config.bin %> <%= command.id %> factory/+/alarms --country GB --country IE', '<%= config.bin %> <%= command.id %> factory/+/alarms --anywhere']
  static override args = { topic: Args.string({ description: 'topic name or filter' }) }
  static override flags = {
    country: Flags.string({ description: 'allowed country code (repeatable)', multiple: true, exclusive: ['anywhere'] }),
    anywhere: Flags.boolean({ description: 'remove the country limit', exclusive: ['country'] }),
    ...reasonFlags,
  }

  async run(): Promise<TopicGeoResult> {
    const name = await this.need(this.args.topic, 'TOPIC', 'Topic')
    if (!this.flags.anywhere && !this.flags.country?.length) throw usageError('pass --country <code> (repeatable) or --anywhere')
    const packed = encodeCountries(this.flags.anywhere ? [] : (this.flags.country ?? []))
    const client = await this.client({ write: true })
    const reason = (await this.onChainReason(this.flags.reason, { private: this.flags['reason-private'], action: 'geo', topic: name })).reason
    const tx = await this.spin(`Setting countries of ${name}`, () => client.setCountries(name, packed, reason))
    const countries = decodeCountries(packed)
    this.say(`${name}: ${countries.length ? countries.join(' ') : 'anywhere'} (tx ${tx.hash})`)
    return { topic: name, countries, tx: txJson(tx) }
  }
}
