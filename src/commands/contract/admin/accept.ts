import type { Signer } from 'ethers'
import { ChainCommand } from '../../../lib/cli/base.js'
import { txJson, type TxJson } from '../../../lib/chain/json.js'
import { FlytrapError } from '../../../lib/errors.js'

export interface ContractAdminAcceptResult {
  previousAdmin: string
  admin: string
  tx: TxJson
}

export default class ContractAdminAccept extends ChainCommand<typeof ContractAdminAccept> {
  static override description = 'Accept the admin role offered by `contract admin transfer` (signed by the pending admin)'
  static override examples = ['<%= config.bin %> <%= command.id %> --key new-admin.json', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<ContractAdminAcceptResult> {
    const client = await this.client({ write: true })
    const me = await (client.contract.runner as Signer).getAddress()
    const { admin, pendingAdmin } = await client.info()
    // Checked first so that a wrong key costs no transaction.
    if (!pendingAdmin || pendingAdmin.toLowerCase() !== me.toLowerCase()) {
      throw new FlytrapError(pendingAdmin ? `${me} is not the pending admin (${pendingAdmin} is)` : 'no admin transfer is pending', { exit: 'usage', suggestions: ['the admin offers the role with `flytrap contract admin transfer <address>`'] })
    }
    const tx = await this.spin('Accepting the admin role', () => client.acceptAdmin())
    this.say(`${me} is the admin now (was ${admin}) (tx ${tx.hash})`)
    return { previousAdmin: admin, admin: me, tx: txJson(tx) }
  }
}
