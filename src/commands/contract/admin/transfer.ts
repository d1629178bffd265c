import { Args } from '@oclif/core'
import { ChainCommand } from '../../../lib/cli/base.js'
import { parseAddress } from '../../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../../lib/chain/json.js'
import { FlytrapError } from '../../../lib/errors.js'

export interface ContractAdminTransferResult {
  admin: string
  pendingAdmin: string
  tx: TxJson
}

export default class ContractAdminTransfer extends ChainCommand<typeof ContractAdminTransfer> {
  static override description = 'Offer the admin role to an address; it becomes admin when that address runs `contract admin accept` (admin only)'
  static override examples = ['<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --key admin.json', '<%= config.bin %> <%= command.id %> 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json']
  static override args = { address: Args.string({ description: 'the new admin' }) }

  async run(): Promise<ContractAdminTransferResult> {
    const to = parseAddress(await this.need(this.args.address, 'ADDRESS', 'New admin address'), 'new admin')
    const client = await this.client({ write: true })
    const { admin, pendingAdmin } = await client.info()
    if (to.toLowerCase() === admin.toLowerCase()) throw new FlytrapError(`${to} is the admin already`, { exit: 'usage' })
    if (pendingAdmin && pendingAdmin.toLowerCase() === to.toLowerCase()) throw new FlytrapError(`${to} is the pending admin already: it accepts with \`flytrap contract admin accept\``, { exit: 'usage' })
    const tx = await this.spin(`Offering the admin role to ${to}`, () => client.transferAdmin(to))
    this.say(`${to} is the pending admin; it becomes admin when it runs \`flytrap contract admin accept\` (tx ${tx.hash})`)
    return { admin, pendingAdmin: to, tx: txJson(tx) }
  }
}
