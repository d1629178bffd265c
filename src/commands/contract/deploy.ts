import { ChainCommand } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { deployFlyTrap } from '../../lib/chain/client.js'
import { recordDeployment } from '../../lib/config/store.js'

export interface ContractDeployResult {
  chainId: number
  address: string
  block: number
  txHash: string
  gasUsed: string
  admin: string
  recordedIn: string
}

export default class ContractDeploy extends ChainCommand<typeof ContractDeploy> {
  static override description = 'Deploy the FlyTrap contract and record its address for this chain under .flytrap/'
  static override examples = ['<%= config.bin %> <%= command.id %> --rpc http://127.0.0.1:8545 --key 0xac09…ff80']

  async run(): Promise<ContractDeployResult> {
    const signer = await this.signer()
    const { chainId } = await this.chain()
    const d = await this.spin(`Deploying FlyTrap to chain ${chainId}`, () => deployFlyTrap(signer))
    const file = recordDeployment({ chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, deployedAt: d.deployedAt })
    const result = { chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, gasUsed: d.gasUsed.toString(), admin: signer.address, recordedIn: file }
    this.say(record([['contract', d.address], ['chain', d.chainId], ['block', d.block], ['admin', signer.address], ['gas used', result.gasUsed], ['recorded in', file]]))
    return result
  }
}
