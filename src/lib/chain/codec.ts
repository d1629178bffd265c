/** Conversions between what users type and what the contract stores. Pure functions, no I/O. */
import { getAddress, hexlify, isAddress, keccak256, toUtf8Bytes, toUtf8String, getBytes, parseEther, formatEther } from 'ethers'
import { usageError } from '../errors.js'
import { isCountryCode } from '../parse/countries.js'

export const Role = { publish: 1, subscribe: 2, both: 3 } as const
export type RoleMask = 1 | 2 | 3

/** Expiry value the contract uses for "until revoked". */
export const FOREVER = 2n ** 40n - 1n

export const TopicFlag = { sensitive: 1, open: 2 } as const

export function topicId(name: string): string {
  return keccak256(toUtf8Bytes(name))
}

export function roleMask(pub: boolean, sub: boolean): RoleMask {
  if (!pub && !sub) throw usageError('choose a role: --pub, --sub or both')
  return ((pub ? 1 : 0) | (sub ? 2 : 0)) as RoleMask
}

export function roleNames(mask: number): string[] {
  return [mask & 1 ? 'publish' : '', mask & 2 ? 'subscribe' : ''].filter(Boolean)
}

/** ISO 3166-1 alpha-2 list → the contract's packed, sorted, de-duplicated byte string. */
export function encodeCountries(codes: readonly string[]): string {
  const unique = [...new Set(codes.flatMap((c) => c.split(',')).map((c) => c.trim().toUpperCase()).filter(Boolean))].sort()
  for (const code of unique) {
    if (!/^[A-Z]{2}$/.test(code)) throw usageError(`--country "${code}" is not an ISO 3166-1 alpha-2 country code`, 'use two letters, e.g. --country GB --country DE')
    if (!isCountryCode(code)) throw usageError(`--country ${code} is not an assigned ISO 3166-1 alpha-2 country code`, code === 'UK' ? 'the United Kingdom is GB' : 'e.g. --country GB --country DE (see ISO 3166-1)')
  }
  if (unique.length > 64) throw usageError('at most 64 countries per topic')
  return hexlify(toUtf8Bytes(unique.join('')))
}

export function decodeCountries(packed: string | Uint8Array): string[] {
  const text = toUtf8String(getBytes(packed))
  const out: string[] = []
  for (let i = 0; i + 1 < text.length; i += 2) out.push(text.slice(i, i + 2))
  return out
}

/** Parses a fee typed in ETH as a decimal string ("0.01") into wei. */
export function parseFee(eth: string, what = 'fee'): bigint {
  const text = eth.trim()
  if (!/^\d+(\.\d{1,18})?$/.test(text)) throw usageError(`${what} "${eth}" is not an amount of ETH`, 'type fees in ETH as a decimal, e.g. 0.01')
  const wei = parseEther(text)
  // The contract stores fees as whole gwei (both fit in the topic's one storage slot).
  if (wei % 10n ** 9n !== 0n) throw usageError(`${what} ${eth} ETH is not a whole number of gwei`, 'fees have at most 9 decimals, e.g. 0.000000001')
  if (wei / 10n ** 9n >= 2n ** 40n) throw usageError(`${what} ${eth} ETH is larger than the contract allows (about 1,099 ETH)`)
  return wei
}

/** Wei → ETH decimal string without a dangling ".0" ("0.01", "1", "0"). */
export function formatFee(wei: bigint): string {
  return formatEther(wei).replace(/\.0$/, '')
}

/** A checksummed address; anything else (a name ethers would look up in ENS, a bad checksum) is a usage error. */
export function parseAddress(value: string, what = 'address'): string {
  if (/^0x[0-9a-fA-F]{40}$/.test(value) && !isAddress(value)) {
    throw usageError(`${what} "${value}" has a wrong checksum (mixed case that does not match EIP-55)`, 'check for a typo, or write the address all in lower case')
  }
  if (!isAddress(value)) throw usageError(`${what} "${value}" is not an Ethereum address`, 'an address is 0x followed by 40 hex digits')
  return getAddress(value)
}

export function formatExpiry(expiry: bigint | number): string {
  const e = BigInt(expiry)
  if (e === 0n) return 'none'
  if (e === FOREVER) return 'never'
  return new Date(Number(e) * 1000).toISOString().replace('.000Z', 'Z')
}
