/**
 * MQTT 5 enhanced authentication, method `FLYTRAP-ETH-V1`: the device names its address in CONNECT, the proxy
 * answers AUTH 0x18 (Continue authentication) with a fresh 32-byte nonce, the device answers AUTH 0x18 with an
 * EIP-191 signature over a text binding the deployment, the client id and the nonce. Nothing in it can be
 * replayed: the nonce is single-use and short-lived. docs/protocol.md is the normative description.
 *
 * Flow on the proxy (which keeps the nonce in per-connection state):
 * 1. CONNECT with Authentication Method = AUTH_METHOD → `challengeFromConnect` (address from Authentication Data).
 * 2. send AUTH { reasonCode: 0x18, authenticationMethod: AUTH_METHOD, authenticationData: nonce = newNonce() }.
 * 3. AUTH 0x18 from the device → `verifyChallenge` once, then forget the nonce whatever the result.
 * 4. CONNACK with `connackCode(result, 5)`.
 */
import { randomBytes } from 'node:crypto'
import { checksumLowerAddress } from '../crypto/keccak.js'
import { usageError } from '../errors.js'
import {
  type CredentialSigner,
  type Deployment,
  assertClientId,
  clientIdProblem,
  normalizeDeployment,
  parseAddress,
  signText,
} from './binding.js'
import { parseSignature, recoverMessageSigner } from './recover.js'
import { type VerifyFailure, type VerifyResult, failure } from './result.js'

/** The CONNECT / AUTH Authentication Method. */
export const AUTH_METHOD = 'FLYTRAP-ETH-V1'
/** AUTH reason code 0x18, Continue authentication: used by both the proxy's challenge and the device's answer. */
export const AUTH_CONTINUE = 0x18
export const NONCE_BYTES = 32
/** Default time a device has to answer the challenge. */
export const DEFAULT_NONCE_MAX_AGE_MS = 30_000

export const CHALLENGE_HEADER = 'FlyTrap MQTT challenge v1'

/** A fresh 32-byte nonce from the CSPRNG. */
export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES)
}

export interface ChallengeBinding extends Deployment {
  /** The MQTT client id exactly as sent in CONNECT. */
  clientId: string
  /** The 32-byte nonce the proxy sent as Authentication Data. */
  nonce: Uint8Array
}

function isNonce(nonce: unknown): nonce is Uint8Array {
  return nonce instanceof Uint8Array && nonce.length === NONCE_BYTES
}

function nonceHex(nonce: Uint8Array): string {
  return '0x' + Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('hex')
}

function buildMessage(chainId: bigint, contract: string, clientId: string, nonce: Uint8Array): string {
  return (
    `${CHALLENGE_HEADER}\n` +
    `chain: ${chainId.toString(10)}\n` +
    `contract: ${contract}\n` +
    `client: ${clientId}\n` +
    `nonce: ${nonceHex(nonce)}`
  )
}

/** The exact text the device signs (LF line ends, no trailing newline, nonce in lower-case hex). */
export function challengeMessage(binding: ChallengeBinding): string {
  const { chainId, contract } = normalizeDeployment(binding)
  assertClientId(binding.clientId)
  if (!isNonce(binding.nonce)) throw usageError(`nonce must be ${NONCE_BYTES} bytes`)
  return buildMessage(chainId, contract, binding.clientId, binding.nonce)
}

/** Device side: the 65-byte signature to send as the AUTH packet's Authentication Data. */
export function signChallenge(opts: ChallengeBinding & { signer: CredentialSigner }): Buffer {
  const { signature } = signText(opts.signer, challengeMessage(opts))
  return Buffer.from(signature.slice(2), 'hex')
}

/** Device side: the CONNECT Authentication Data, the 20 address bytes. */
export function connectAuthData(address: string): Buffer {
  if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) throw usageError('address must be 0x + 40 hex digits')
  return Buffer.from(address.slice(2), 'hex')
}

/** The enhanced-auth request decoded from CONNECT. */
export interface ParsedChallengeRequest {
  kind: 'challenge'
  clientId: string
  /** Claimed address, EIP-55 (not authenticated until verifyChallenge). */
  address: string
}

/**
 * Decode CONNECT's Authentication Method and Data. `missing` when there is no Authentication Method (use the
 * other carriers then); `malformed` when the method is not ours (answer CONNACK 0x8C Bad authentication
 * method) or the data is not exactly 20 bytes. Never throws.
 */
export function challengeFromConnect(fields: {
  clientId: string
  authenticationMethod?: string | null
  authenticationData?: Uint8Array | null
}): ParsedChallengeRequest | VerifyFailure {
  const transport = 'enhanced-auth' as const
  if (fields === null || typeof fields !== 'object') return failure('malformed', 'no CONNECT fields', { transport })
  const method = fields.authenticationMethod
  if (method === undefined || method === null) return failure('missing', 'no authentication method', { transport })
  if (method !== AUTH_METHOD) return failure('malformed', 'unsupported authentication method', { transport })
  const data = fields.authenticationData
  if (!(data instanceof Uint8Array) || data.length !== 20) {
    return failure('malformed', 'authentication data must be the 20 address bytes', { transport })
  }
  const hex = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex')
  const address = checksumLowerAddress('0x' + hex)
  const clientId = typeof fields.clientId === 'string' ? fields.clientId : ''
  return { kind: 'challenge', clientId, address }
}

export interface VerifyChallengeInput {
  clientId: string
  /** Claimed address (from challengeFromConnect). */
  address: string
  /** The nonce this connection was sent. Delete it after this call, whatever the result. */
  nonce: Uint8Array
  /** The device's AUTH Authentication Data: a 65-byte signature. */
  response: unknown
  /** When the nonce was sent, ms since the epoch (Date.now()). Without it no age check is made. */
  issuedAtMs?: number
}

export interface VerifyChallengeOptions extends Deployment {
  /** Default Date.now(). */
  nowMs?: number
  /** Default 30,000 ms. */
  maxAgeMs?: number
}

/**
 * Proxy side: check the device's answer. Never throws for client input (a usage FlytrapError only for invalid
 * options). The caller must make the nonce single-use: call this at most once per nonce.
 */
export function verifyChallenge(input: VerifyChallengeInput, opts: VerifyChallengeOptions): VerifyResult {
  const { chainId, contract } = normalizeDeployment(opts)
  const transport = 'enhanced-auth' as const
  if (input === null || typeof input !== 'object') return failure('malformed', 'no challenge state', { transport })
  const claimedAddress = parseAddress(input.address)
  if (!claimedAddress) return failure('malformed', 'no valid claimed address', { transport })
  if (!isNonce(input.nonce)) return failure('malformed', `nonce is not ${NONCE_BYTES} bytes`, { transport, claimedAddress })
  const problem = clientIdProblem(input.clientId)
  if (problem) return failure('wrong-client-id', problem, { transport, claimedAddress })
  if (input.issuedAtMs !== undefined) {
    const nowMs = opts.nowMs ?? Date.now()
    const maxAge = opts.maxAgeMs ?? DEFAULT_NONCE_MAX_AGE_MS
    if (!(nowMs - input.issuedAtMs <= maxAge)) return failure('expired', 'challenge answered too late', { transport, claimedAddress })
  }
  const response = input.response
  if (!(response instanceof Uint8Array) || response.length !== 65) {
    return failure('malformed', 'authentication data must be a 65-byte signature', { transport, claimedAddress })
  }
  if (!parseSignature(response)) {
    return failure('bad-signature', 'signature is not canonical (v, r or s out of range, or high s)', { transport, claimedAddress })
  }
  const recovered = recoverMessageSigner(buildMessage(chainId, contract, input.clientId, input.nonce), response)
  if (recovered !== claimedAddress.toLowerCase()) {
    return failure('bad-signature', 'signature does not recover to the claimed address for this deployment, client id and nonce', {
      transport,
      claimedAddress,
    })
  }
  return { ok: true, outcome: 'ok', address: claimedAddress, transport, legacy: false }
}
