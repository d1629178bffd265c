/** Shared assertions for the contract suites (not a test file: the runner only picks up *.test.ts). */
import assert from 'node:assert/strict'
import { Interface, getAddress, hexlify, randomBytes, toUtf8Bytes } from 'ethers'
import { FlytrapError } from '../../src/lib/errors.js'
import { abi, type TxResult } from '../../src/lib/chain/client.js'
import type { ChainFixture } from '../helpers/chain.js'

/** Plain topic registration defaults (the one builder, shared with every suite). */
export { topicArgs } from '../helpers/topics.js'

/** ExitCode.reverted: what the client sets on every contract revert. */
export const EXIT_REVERTED = 5

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'

/** A fresh address nobody controls (for grant targets and withdrawal recipients). */
export function randomAddress(): string {
  return getAddress(hexlify(randomBytes(20)))
}

/** Raw hex of an ASCII/UTF-8 string, for hand-made `bytes` arguments (countries). */
export function hex(text: string): string {
  return hexlify(toUtf8Bytes(text))
}

/** Ethers Results (array-likes) → plain arrays, recursively, so deepEqual compares values only. */
export function plain(v: unknown): unknown {
  if (Array.isArray(v)) return Array.from(v as unknown[], plain)
  return v
}

const iface = new Interface(abi)

/**
 * The contract's custom error behind a client FlytrapError, decoded from the revert data with the ABI.
 */
export function decodeRevert(err: FlytrapError): { name: string; args: unknown[] } | null {
  const cause = err.cause as { revert?: { name: string; args: readonly unknown[] } | null; data?: unknown } | undefined
  if (cause?.revert) return { name: cause.revert.name, args: plain([...cause.revert.args]) as unknown[] }
  if (typeof cause?.data === 'string' && cause.data.length >= 10) {
    const parsed = iface.parseError(cause.data)
    if (parsed) return { name: parsed.name, args: plain([...parsed.args]) as unknown[] }
  }
  return null
}

/** Awaits `p`, asserts it failed with a FlytrapError and returns it. */
export async function failure(p: Promise<unknown>, what = 'an error'): Promise<FlytrapError> {
  let caught: unknown
  let settled = false
  try {
    await p
    settled = true
  } catch (err) {
    caught = err
  }
  assert.ok(!settled, `expected ${what}, but the call succeeded`)
  assert.ok(caught instanceof FlytrapError, `expected a FlytrapError (${what}), got ${String(caught)}`)
  return caught
}

/**
 * Awaits `p` and asserts it was refused by the contract with exactly the custom error `code` (and, when
 * given, exactly these error arguments), as a FlytrapError with exit 5 whose `.code` is that name. The
 * name and arguments are also checked against the revert data itself, independently of the client's mapping.
 */
export async function expectRevert(p: Promise<unknown>, code: string, args?: unknown[]): Promise<FlytrapError> {
  const caught = await failure(p, code)
  assert.equal(caught.exit, EXIT_REVERTED, caught.message)
  assert.equal(caught.code, code, caught.message)
  const decoded = decodeRevert(caught)
  assert.ok(decoded, `no custom error behind: ${caught.message}`)
  assert.equal(decoded.name, code, `expected ${code}: ${caught.message}`)
  if (args) assert.deepEqual(decoded.args, args)
  return caught
}

/** Every decoded event of `name` in a transaction result, args made plain. */
export function eventsOf(res: TxResult, name: string): Record<string, unknown>[] {
  return res.events.filter((e) => e.name === name).map((e) => Object.fromEntries(Object.entries(e.args).map(([k, v]) => [k, plain(v)])))
}

/** The one event of `name` the transaction emitted (asserts there is exactly one). */
export function eventOf(res: TxResult, name: string): Record<string, unknown> {
  const all = eventsOf(res, name)
  assert.equal(all.length, 1, `expected one ${name} event, got ${all.length} (${res.events.map((e) => e.name).join(', ')})`)
  return all[0]!
}

/** Timestamp of the latest block (the chain's "now", which evm_increaseTime moves). */
export async function chainNow(fx: ChainFixture): Promise<number> {
  const block = await fx.provider.getBlock('latest')
  assert.ok(block)
  return block.timestamp
}

/** Timestamp of the block a transaction was mined in. */
export async function blockTime(fx: ChainFixture, blockNumber: number): Promise<number> {
  const block = await fx.provider.getBlock(blockNumber)
  assert.ok(block)
  return block.timestamp
}

