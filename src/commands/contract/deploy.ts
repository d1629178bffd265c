import { Flags } from '@oclif/core'
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
  /** Sensitive reports may name addresses in clear (fixed for the contract's life). */
  publicSensitiveLists: boolean
  recordedIn: string
}

export default class ContractDeploy extends ChainCommand<typeof ContractDeploy> {
  static override description = 'Deploy the FlyTrap contract and record its address for this chain under .flytrap/'
  static override examples = ['<%= config.bin %> <%= command.id %> --rpc http://127.0.0.1:8545 --key 0xac09…ff80', '<%= config.bin %> <%= command.id %> --public-sensitive-lists   # permissioned chains only']
  static override flags = {
    'public-sensitive-lists': Flags.boolean({
      description: 'let sensitive-topic reports name their publishers and receivers in clear on chain (the 2020 paper\'s behaviour), for permissioned chains only; fixed for the contract\'s life. Default: counts and a Merkle root only (docs/evidence.md)',
    }),
  }

  async run(): Promise<ContractDeployResult> {
    const signer = await this.signer()
    const publicSensitiveLists = this.flags['public-sensitive-lists'] === true
    const chain = await this.publicChain()
    const chainId = chain.chainId
    if (publicSensitiveLists && chain.public) this.stderrWarning(`chain ${chainId} is public: with --public-sensitive-lists every period's sensitive-topic reports name who published and received, readable by anyone, permanently`)
    const d = await this.spin(`Deploying FlyTrap to chain ${chainId}`, () => deployFlyTrap(signer, { publicSensitiveLists }))
    const file = recordDeployment({ chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, deployedAt: d.deployedAt })
    const result = { chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, gasUsed: d.gasUsed.toString(), admin: signer.address, publicSensitiveLists, recordedIn: file }
    this.say(record([['contract', d.address], ['chain', d.chainId], ['block', d.block], ['admin', signer.address], ['sensitive reports', publicSensitiveLists ? 'addresses in clear (--public-sensitive-lists)' : 'commitments (counts + members root)'], ['gas used', result.gasUsed], ['recorded in', file]]))
    return result
  }
}
