import { ChainCommand } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { formatFee } from '../../lib/chain/codec.js'
import { compilerVersion } from '../../lib/chain/artifacts/FlyTrap.js'

export interface ContractInfoResult {
  chainId: number
  rpc: string
  address: string
  admin: string
  pendingAdmin: string | null
  registrationFeeEth: string
  topicSlots: number
  compiler: string
}

export default class ContractInfo extends ChainCommand<typeof ContractInfo> {
  static override description = 'Show the deployment: chain, address, admin, registration fee and counters'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<ContractInfoResult> {
    const client = await this.client()
    const { chainId } = await this.chain()
    const i = await client.info()
    const result: ContractInfoResult = {
      chainId,
      rpc: this.rpcUrl,
      address: client.address,
      admin: i.admin,
      pendingAdmin: i.pendingAdmin,
      registrationFeeEth: formatFee(i.registrationFee),
      topicSlots: i.topicCount,
      compiler: compilerVersion,
    }
    this.say(
      record([
        ['contract', result.address],
        ['chain', `${chainId} (${result.rpc})`],
        ['admin', result.admin],
        ['pending admin', result.pendingAdmin ?? '-'],
        ['registration fee', `${result.registrationFeeEth} ETH`],
        ['topics registered (incl. removed)', result.topicSlots],
      ]),
    )
    return result
  }
}
