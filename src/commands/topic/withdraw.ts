import { Flags } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { formatFee, parseAddress } from '../../lib/chain/codec.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'
import { FlytrapError } from '../../lib/errors.js'

export interface TopicWithdrawResult {
  owner: string
  to: string
  amountEth: string
  amountWei: string
  tx: TxJson
}

export default class TopicWithdraw extends ChainCommand<typeof TopicWithdraw> {
  static override description = 'Withdraw the fees your topics have earned (pull payment)'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --to 0x90F79bf6EB2c4f870365E785982E1f101E93b906']
  static override flags = { to: Flags.string({ description: 'send to this address instead of your own' }) }

  async run(): Promise<TopicWithdrawResult> {
    const c = await this.client({ write: true })
    const signer = await this.signer()
    const to = this.flags.to ? parseAddress(this.flags.to, '--to') : signer.address
    const amount = await c.balanceOf(signer.address)
    if (amount === 0n) throw new FlytrapError(`nothing to withdraw for ${signer.address}`, { exit: 'reverted', code: 'NothingToWithdraw' })
    const tx = await this.spin(`Withdrawing ${formatFee(amount)} ETH`, () => c.withdraw(to))
    this.say(`withdrew ${formatFee(amount)} ETH to ${to} (tx ${tx.hash})`)
    return { owner: signer.address, to, amountEth: formatFee(amount), amountWei: amount.toString(), tx: txJson(tx) }
  }
}
