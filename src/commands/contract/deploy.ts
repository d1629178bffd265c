import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { record } from '../../lib/cli/output.js'
import { deployFlyTrap, type Deployment } from '../../lib/chain/client.js'
import { deploymentFor, recordDeployment } from '../../lib/config/project-dir.js'
import { FlytrapError } from '../../lib/errors.js'

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
  /** The deployment recorded for this chain before (now replaced), with whether its code was still on chain. */
  replaced: (Deployment & { live: boolean }) | null
}

export default class ContractDeploy extends ChainCommand<typeof ContractDeploy> {
  static override description = `Deploy the FlyTrap contract and record its address for this chain under .flytrap/.
A deployment already recorded for the chain is replaced only with --force while its contract is still on chain.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --rpc http://127.0.0.1:8545 --key 0xac09…ff80',
    '<%= config.bin %> <%= command.id %> --public-sensitive-lists   # permissioned chains only',
    '<%= config.bin %> <%= command.id %> --force   # a new contract in place of the one recorded for this chain',
  ]
  static override flags = {
    'public-sensitive-lists': Flags.boolean({
      description: 'let sensitive-topic reports name their publishers and receivers in clear on chain (the 2020 paper\'s behaviour), for permissioned chains only; fixed for the contract\'s life. Default: counts and a Merkle root only (docs/evidence.md)',
    }),
    force: Flags.boolean({ description: 'replace the deployment recorded for this chain even though its contract is still there (its topics, grants and anchors stay on the old contract)' }),
  }

  async run(): Promise<ContractDeployResult> {
    const publicSensitiveLists = this.flags['public-sensitive-lists'] === true
    const chain = await this.publicChain()
    const chainId = chain.chainId
    // Replacing the recorded deployment silently would move every later command (and `flytrap dev`) to an empty contract.
    const previous = deploymentFor(chainId)
    let replaced: ContractDeployResult['replaced'] = null
    if (previous) {
      const { provider } = await this.chain()
      const live = (await provider.getCode(previous.address)) !== '0x'
      replaced = { ...previous, live }
      if (live && !this.flags.force) {
        throw new FlytrapError(`a FlyTrap contract is already recorded for chain ${chainId}: ${previous.address} (block ${previous.block})`, {
          exit: 'usage',
          code: 'FLYTRAP_DEPLOYMENT_EXISTS',
          suggestions: ['use it as it is (every command finds it in .flytrap/deployments.json)', 'or pass --force to deploy a new contract and record it instead (the old one keeps its topics, grants and anchors)'],
        })
      }
    }
    const signer = await this.signer()
    if (publicSensitiveLists && chain.public) this.stderrWarning(`chain ${chainId} is public: with --public-sensitive-lists every period's sensitive-topic reports name who published and received, readable by anyone, permanently`)
    const d = await this.spin(`Deploying FlyTrap to chain ${chainId}`, () => deployFlyTrap(signer, { publicSensitiveLists }))
    const file = recordDeployment({ chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, deployedAt: d.deployedAt })
    const result: ContractDeployResult = { chainId: d.chainId, address: d.address, block: d.block, txHash: d.txHash, gasUsed: d.gasUsed.toString(), admin: signer.address, publicSensitiveLists, recordedIn: file, replaced }
    const rows: [string, string | number][] = [['contract', d.address], ['chain', d.chainId], ['block', d.block], ['admin', signer.address], ['sensitive reports', publicSensitiveLists ? 'addresses in clear (--public-sensitive-lists)' : 'commitments (counts + members root)'], ['gas used', result.gasUsed], ['recorded in', file]]
    if (replaced) rows.push(['replaced', `${replaced.address} (block ${replaced.block}${replaced.live ? ', still on chain' : ', no longer on chain'})`])
    this.say(record(rows))
    return result
  }
}
