/** Test fixture: a real anvil on a free port with a freshly deployed FlyTrap contract. */
import { Wallet, type JsonRpcProvider } from 'ethers'
import { ANVIL_DEV_KEYS, startAnvil, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { connect, deployFlyTrap, FlyTrapClient, type AnchorArgs } from '../../src/lib/chain/client.js'
import { rangeIndex } from '../../src/lib/audit/journal-files.js'

export interface ChainFixture {
  anvil: AnvilHandle
  rpcUrl: string
  chainId: number
  address: string
  deployBlock: number
  provider: Awaited<ReturnType<typeof connect>>['provider']
  /** The same provider as anvil's JSON-RPC, for its own methods (evm_mine, evm_setAutomine, anvil_setBalance ...). */
  rpc: JsonRpcProvider
  /** Anvil dev account #i as an ethers Wallet connected to the provider. */
  wallet(i: number): Wallet
  /** The contract client acting as dev account #i. */
  as(i: number): FlyTrapClient
  /** Moves chain time forward and mines a block. */
  increaseTime(seconds: number): Promise<void>
  close(): Promise<void>
}

export async function chainFixture(opts: { deploy?: boolean; publicSensitiveLists?: boolean } = {}): Promise<ChainFixture> {
  const anvil = await startAnvil()
  const { provider, chainId } = await connect(anvil.rpcUrl)
  const wallet = (i: number) => {
    const key = ANVIL_DEV_KEYS[i]
    if (!key) throw new Error(`anvil has dev accounts 0..${ANVIL_DEV_KEYS.length - 1}, not ${i}`)
    return new Wallet(key, provider)
  }
  const rpc = provider as unknown as JsonRpcProvider
  let address = ''
  let deployBlock = 0
  if (opts.deploy !== false) {
    const d = await deployFlyTrap(wallet(0), { publicSensitiveLists: opts.publicSensitiveLists })
    address = d.address
    deployBlock = d.block
  }
  return {
    anvil,
    rpcUrl: anvil.rpcUrl,
    chainId,
    address,
    deployBlock,
    provider,
    rpc,
    wallet,
    as: (i) => new FlyTrapClient(address, wallet(i)),
    increaseTime: async (seconds) => {
      await rpc.send('evm_increaseTime', [seconds])
      await rpc.send('evm_mine', [])
    },
    close: async () => {
      provider.destroy()
      await anvil.stop()
    },
  }
}

type PeriodLike = { fromTime: number; toTime: number; firstSeq: number | null; count: number; root: string; prevChain: string | null; chain: string | null; index?: string }

/**
 * A journal period's root as the anchor link its reporter sends (it must continue the reporter's sequence).
 * Its scope index root is `p.index`, else 0x00…00: use indexedLink for a link `audit verify` accepts.
 */
export function link(p: PeriodLike): AnchorArgs {
  if (p.firstSeq === null || p.prevChain === null || p.chain === null) throw new Error('link(): an empty period has no seqs of its own; build its empty link from the previous one')
  return { fromTime: p.fromTime, toTime: p.toTime, firstSeq: p.firstSeq, count: p.count, root: p.root, index: p.index ?? '0x' + '00'.repeat(32), prevChain: p.prevChain, chain: p.chain }
}

/** The link the proxy's anchoring sends for a period of the journal in `dataDir`: with its scope index root. */
export async function indexedLink(dataDir: string, p: PeriodLike): Promise<AnchorArgs> {
  return link({ ...p, index: (await rangeIndex(dataDir, p)).root })
}
