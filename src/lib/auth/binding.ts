/**
 * What every FlyTrap credential binds: the deployment (chain id + contract address) and the MQTT client id.
 * Validation helpers shared by the credential and challenge formats, and the signer normalisation.
 */
import { createRequire } from 'node:module'
import type { BaseWallet, SigningKey } from 'ethers'
import { checksumLowerAddress } from '../crypto/keccak.js'
import { FlytrapError, usageError } from '../errors.js'
import { eip191Digest } from './recover.js'

export interface Deployment {
  /** EIP-155 chain id, a positive integer. */
  chainId: bigint
  /** The FlyTrap contract's address; any valid spelling, normalised to EIP-55 in signed text. */
  contract: string
}

/** A deployment whose fields are validated and whose contract address is EIP-55 checksummed. */
export interface NormalizedDeployment {
  chainId: bigint
  contract: string
}

const contractCache = new Map<string, string>()

/** Validate and normalise a deployment. Throws a usage FlytrapError: this is configuration, not client input. */
export function normalizeDeployment(d: Deployment): NormalizedDeployment {
  const { chainId, contract } = d
  if (typeof chainId !== 'bigint' || chainId <= 0n) {
    throw usageError(`chain id must be a positive bigint, got ${String(chainId)}`)
  }
  let checksummed = typeof contract === 'string' ? contractCache.get(contract) : undefined
  if (checksummed === undefined) {
    const parsed = parseAddress(contract)
    if (!parsed) throw usageError(`contract must be a 0x-prefixed 20-byte address, got ${JSON.stringify(contract)}`)
    checksummed = parsed
    if (contractCache.size >= 64) contractCache.clear()
    contractCache.set(contract, checksummed)
  }
  return { chainId, contract: checksummed }
}

const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/

/**
 * Parse a `0x` + 40 hex digit address: all lower-case, all upper-case, or a correct EIP-55 mixed-case
 * checksum. Returns the EIP-55 form, or null (never throws).
 */
export function parseAddress(text: unknown): string | null {
  if (typeof text !== 'string' || text.length !== 42 || !HEX_ADDRESS.test(text)) return null
  const cached = addressCache.get(text)
  if (cached !== undefined) return cached
  const lower = text.toLowerCase()
  const checksummed = checksumLowerAddress(lower)
  // Mixed case must be exactly the checksum; all lower or all upper case carries none.
  if (text !== lower && text !== '0x' + lower.slice(2).toUpperCase() && text !== checksummed) return null
  if (addressCache.size >= ADDRESS_CACHE_MAX) addressCache.clear()
  addressCache.set(text, checksummed)
  return checksummed
}

/**
 * Valid spellings seen recently → EIP-55 form. The checksum costs a keccak (as much as a quarter of a whole
 * credential check); devices reconnect with the same address, so a small cache removes it. Bounded: cleared
 * when full, so random addresses from an attacker cost them a keccak each and us nothing more.
 */
const ADDRESS_CACHE_MAX = 16_384
const addressCache = new Map<string, string>()

/**
 * Why a client id cannot be bound into signed text, or undefined when it can. Refused: empty (the broker
 * would assign one, so nothing could be bound); CR or LF (could forge lines of the signed text); U+0000 and
 * lone UTF-16 surrogates (not allowed in an MQTT UTF-8 string, MQTT 5 §1.5.4); more than 65,535 UTF-8 bytes.
 */
export function clientIdProblem(clientId: unknown): string | undefined {
  if (typeof clientId !== 'string') return 'client id is not a string'
  if (clientId.length === 0) return 'client id is empty: set an explicit client id, it is part of the signed text'
  if (clientId.length > 65535) return 'client id is longer than 65,535 bytes'
  for (let i = 0; i < clientId.length; i++) {
    const c = clientId.charCodeAt(i)
    if (c === 0x0a || c === 0x0d) return 'client id contains a line break (CR or LF)'
    if (c === 0) return 'client id contains U+0000'
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = clientId.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return 'client id contains a lone UTF-16 surrogate'
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return 'client id contains a lone UTF-16 surrogate'
    }
  }
  if (Buffer.byteLength(clientId, 'utf8') > 65535) return 'client id is longer than 65,535 bytes'
  return undefined
}

export function assertClientId(clientId: string): void {
  const problem = clientIdProblem(clientId)
  if (problem) throw usageError(problem, 'Use a client id without line breaks, e.g. "sensor-1".')
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** What can sign: an ethers Wallet (or HDNodeWallet), a SigningKey, or a 32-byte private key in hex. */
export type CredentialSigner = BaseWallet | SigningKey | string

/**
 * ethers, loaded on the first signing call: verifying (the proxy's verify worker threads import this module)
 * never signs, and ethers costs about 20 MiB per thread.
 */
let ethersLib: typeof import('ethers') | undefined
function ethers(): typeof import('ethers') {
  ethersLib ??= createRequire(import.meta.url)('ethers') as typeof import('ethers')
  return ethersLib
}

export function toSigningKey(signer: CredentialSigner): SigningKey {
  // Duck-typed, not instanceof: the lazily required ethers is its CommonJS build, the caller's may be the ESM one.
  if (typeof signer === 'object' && signer !== null) {
    if ('signingKey' in signer && isSigningKey(signer.signingKey)) return signer.signingKey
    if (isSigningKey(signer)) return signer
  }
  if (typeof signer === 'string') {
    const hex = signer.startsWith('0x') || signer.startsWith('0X') ? signer.slice(2) : signer
    if (/^[0-9a-fA-F]{64}$/.test(hex)) {
      const k = BigInt('0x' + hex)
      if (k === 0n || k >= SECP256K1_N) throw new FlytrapError('private key is out of range', { exit: 'key' })
      return new (ethers().SigningKey)('0x' + hex.toLowerCase())
    }
  }
  throw new FlytrapError('signer must be an ethers Wallet, a SigningKey or a 32-byte hex private key', { exit: 'key' })
}

function isSigningKey(k: unknown): k is SigningKey {
  return typeof k === 'object' && k !== null && typeof (k as SigningKey).sign === 'function' && typeof (k as SigningKey).publicKey === 'string' && typeof (k as SigningKey).privateKey === 'string'
}

/** The EIP-55 address of a signer. */
export function signerAddress(signer: CredentialSigner): string {
  return ethers().computeAddress(toSigningKey(signer).publicKey)
}

/** Sign an EIP-191 message; returns the EIP-55 address and the 65-byte `0x` signature (v = 27/28, low s). */
export function signText(signer: CredentialSigner, message: string): { address: string; signature: string } {
  const key = toSigningKey(signer)
  const signature = key.sign(eip191Digest(message)).serialized
  return { address: ethers().computeAddress(key.publicKey), signature }
}
