/**
 * Runs `audit check` in the browser: the same checkBundle as the CLI (src/lib/audit/evidence/check.ts, ethers and
 * pure code), with a JSON-RPC provider on this server's read-only relay (/api/rpc), pinned to the chain id and
 * contract the server serves. Loaded on demand by the check page, so ethers stays out of the other pages.
 * The bundle itself never leaves the browser: only chain reads go to the relay.
 */
import { JsonRpcProvider, Network } from 'ethers'
import { checkBundle, type CheckResult } from '../../src/lib/audit/evidence/check.js'

export type { CheckResult }

export async function checkInBrowser(bundle: unknown, pin: { chainId: number; contract: string }): Promise<CheckResult> {
  const provider = new JsonRpcProvider(`${location.origin}/api/rpc`, Network.from(pin.chainId), { staticNetwork: true, batchMaxCount: 10 })
  try {
    return await checkBundle(bundle, { provider, contract: pin.contract, chainId: pin.chainId })
  } finally {
    provider.destroy()
  }
}
