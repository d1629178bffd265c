import { Args } from '@oclif/core'
import { ChainCommand } from '../../lib/cli/base.js'
import { parseEther } from 'ethers'
import { formatFee } from '../../lib/chain/codec.js'
import { usageError } from '../../lib/errors.js'
import { txJson, type TxJson } from '../../lib/chain/json.js'

export interface ContractFeeResult {
  registrationFeeEth: string
  registrationFeeWei: string
  /** Null when only shown (no amount given) or unchanged. */
  tx: TxJson | null
}

export default class ContractFee extends ChainCommand<typeof ContractFee> {
  static override description = 'Show the fee for registering a topic, or set it (admin only)'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> 0.01 --key admin.json', '<%= config.bin %> <%= command.id %> 0 --json']
  static override args = { amount: Args.string({ description: 'new registration fee in ETH (e.g. 0.01); omit to show the current one' }) }

  async run(): Promise<ContractFeeResult> {
    const wanted = this.args.amount === undefined ? undefined : parseRegistrationFee(this.args.amount)
    const client = await this.client({ write: wanted !== undefined })
    const current = (await client.info()).registrationFee
    if (wanted === undefined || wanted === current) {
      this.say(`registration fee: ${formatFee(current)} ETH${wanted === undefined ? '' : ' (unchanged: nothing sent)'}`)
      return { registrationFeeEth: formatFee(current), registrationFeeWei: current.toString(), tx: null }
    }
    const tx = await this.spin(`Setting the registration fee to ${formatFee(wanted)} ETH`, () => client.setRegistrationFee(wanted))
    this.say(`registration fee: ${formatFee(wanted)} ETH (was ${formatFee(current)}) (tx ${tx.hash})`)
    return { registrationFeeEth: formatFee(wanted), registrationFeeWei: wanted.toString(), tx: txJson(tx) }
  }
}

/** ETH as a decimal ("0.01") → wei; the contract stores the registration fee as a uint96 (any wei amount). */
function parseRegistrationFee(eth: string): bigint {
  const text = eth.trim()
  if (!/^\d+(\.\d{1,18})?$/.test(text)) throw usageError(`registration fee "${eth}" is not an amount of ETH`, 'type it in ETH as a decimal, e.g. 0.01')
  const wei = parseEther(text)
  if (wei >= 2n ** 96n) throw usageError(`registration fee ${eth} ETH is larger than the contract stores (uint96 wei)`)
  return wei
}
