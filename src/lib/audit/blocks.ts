/**
 * Time → block mapping for reports: binary search on block timestamps (which never decrease along the
 * chain), O(log n) getBlock calls per bound, never a scan from block 0. Timestamps are cached per provider,
 * so the two bounds of a range and the rows' block times share their look-ups.
 */
import type { Provider } from 'ethers'
import { chainError } from '../chain/client.js'

const caches = new WeakMap<Provider, Map<number, number>>()
const MAX_CACHED = 100_000

export interface SearchOptions {
  /** Lowest block to consider (e.g. the contract's deployment block). Default 0. */
  lo?: number
  /** Highest block to consider. Default: the current head. */
  hi?: number
  /** Counts getBlock calls that missed the cache (for tests and progress). */
  stats?: { calls: number }
}

/** The timestamp (unix seconds) of block n, cached. */
export async function blockTime(provider: Provider, n: number, stats?: { calls: number }): Promise<number> {
  let cache = caches.get(provider)
  if (!cache) {
    cache = new Map()
    caches.set(provider, cache)
  }
  const hit = cache.get(n)
  if (hit !== undefined) return hit
  let block
  try {
    block = await provider.getBlock(n)
  } catch (err) {
    throw chainError(err, 'eth_getBlockByNumber')
  }
  if (!block) throw chainError(new Error(`block ${n} not found`), 'eth_getBlockByNumber')
  if (stats) stats.calls++
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as number)
  cache.set(n, block.timestamp)
  return block.timestamp
}

async function bounds(provider: Provider, opts: SearchOptions): Promise<[number, number]> {
  const lo = Math.max(0, opts.lo ?? 0)
  let hi = opts.hi
  if (hi === undefined) {
    try {
      hi = await provider.getBlockNumber()
    } catch (err) {
      throw chainError(err, 'eth_blockNumber')
    }
  }
  return [lo, hi]
}

/** The first block with timestamp ≥ time (unix seconds), or null when every block is older. */
export async function blockAtOrAfter(provider: Provider, time: number, opts: SearchOptions = {}): Promise<number | null> {
  let [lo, hi] = await bounds(provider, opts)
  if (hi < lo) return null
  const ts = (n: number) => blockTime(provider, n, opts.stats)
  if ((await ts(hi)) < time) return null
  if ((await ts(lo)) >= time) return lo
  // ts(lo) < time ≤ ts(hi)
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if ((await ts(mid)) >= time) hi = mid
    else lo = mid
  }
  return hi
}

/** The last block with timestamp ≤ time (unix seconds), or null when every block is newer. */
export async function blockAtOrBefore(provider: Provider, time: number, opts: SearchOptions = {}): Promise<number | null> {
  let [lo, hi] = await bounds(provider, opts)
  if (hi < lo) return null
  const ts = (n: number) => blockTime(provider, n, opts.stats)
  if ((await ts(lo)) > time) return null
  if ((await ts(hi)) <= time) return hi
  // ts(lo) ≤ time < ts(hi)
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if ((await ts(mid)) <= time) lo = mid
    else hi = mid
  }
  return lo
}

/**
 * The blocks whose timestamps fall in [fromTime, toTime) (unix seconds), or null when there are none.
 * Both searches share one head and the cache.
 */
export async function blockRange(provider: Provider, fromTime: number, toTime: number, opts: SearchOptions = {}): Promise<{ fromBlock: number; toBlock: number } | null> {
  if (!(toTime > fromTime)) return null
  const [lo, hi] = await bounds(provider, opts)
  const o = { ...opts, lo, hi }
  const fromBlock = await blockAtOrAfter(provider, fromTime, o)
  if (fromBlock === null) return null
  // Timestamps are whole seconds: "< toTime" is "≤ toTime - 1".
  const toBlock = await blockAtOrBefore(provider, Math.ceil(toTime) - 1, { ...o, lo: fromBlock })
  if (toBlock === null || toBlock < fromBlock) return null
  return { fromBlock, toBlock }
}

/**
 * The block a contract was deployed in: binary search on eth_getCode (needs a node that serves historical
 * state, as anvil and archive nodes do). Null when the node cannot answer for old blocks.
 */
export async function deploymentBlock(provider: Provider, address: string, opts: SearchOptions = {}): Promise<number | null> {
  let [lo, hi] = await bounds(provider, opts)
  const has = async (n: number) => (await provider.getCode(address, n)) !== '0x'
  try {
    if (!(await has(hi))) return null
    if (await has(lo)) return lo
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2)
      if (await has(mid)) hi = mid
      else lo = mid
    }
    return hi
  } catch {
    return null
  }
}
