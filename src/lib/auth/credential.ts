/**
 * FlyTrap v1 CONNECT credentials: a device proves its Ethereum key with an EIP-191 signature over a text that
 * binds the deployment, the MQTT client id and an expiry (docs/protocol.md is the normative description).
 *
 * Two carriers of the same credential:
 * - MQTT 5 CONNECT user properties `flytrap-address`, `flytrap-expires`, `flytrap-sig` (and optional `flytrap-v`);
 * - username = address, password = `v1:<expires>:<0x signature>` (MQTT 3.1.1, or 5 without properties).
 *
 * The legacy static form (a signature over the address alone, from the 2020 prototype) is REPLAYABLE FOREVER by
 * anyone who sees it once. It is produced only with `legacy: true` and verified only by `verifyLegacyCredential`,
 * which the proxy calls only when the operator opts in.
 */
import { FlytrapError, usageError } from '../errors.js'
import {
  type CredentialSigner,
  type Deployment,
  assertClientId,
  clientIdProblem,
  normalizeDeployment,
  parseAddress,
  signText,
  signerAddress,
} from './binding.js'
import { parseSignature, recoverMessageSigner } from './recover.js'
import { type VerifyFailure, type VerifyResult, failure } from './result.js'

export { type CredentialSigner, type Deployment } from './binding.js'

export const CREDENTIAL_HEADER = 'FlyTrap MQTT credential v1'

/** User property names (case-sensitive, as MQTT compares them). */
export const UserProperty = {
  address: 'flytrap-address',
  expires: 'flytrap-expires',
  signature: 'flytrap-sig',
  version: 'flytrap-v',
} as const

/** Every user property whose key starts with this is FlyTrap's and is stripped before CONNECT goes upstream. */
export const USER_PROPERTY_PREFIX = 'flytrap-'

/** Password prefix of the username/password carrier. */
export const PASSWORD_PREFIX = 'v1:'

/** Default maximum lifetime the verifier accepts: an expiry more than this far in the future is `too-long`. */
export const DEFAULT_MAX_LIFETIME_SEC = 366 * 24 * 60 * 60

/** Printed by anything that produces or accepts the legacy form. */
export const LEGACY_WARNING =
  'LEGACY static credential: a signature over the address alone never expires and is not bound to a ' +
  'deployment or client id. Anyone who sees it once can replay it forever. Use it only for devices that ' +
  'cannot be updated, and only if the proxy operator has enabled legacy credentials.'

/** What the v1 signed text binds. */
export interface CredentialBinding extends Deployment {
  /** The MQTT client id exactly as sent in CONNECT. Non-empty; no CR, LF, U+0000 or lone surrogate. */
  clientId: string
  /** Unix seconds (a positive safe integer) after which the credential is refused. */
  expiresAt: number
}

/** A signed v1 credential. Pass it to the encoders below. */
export interface Credential {
  /** The signer's address, EIP-55. */
  address: string
  /** Unix seconds. */
  expiresAt: number
  /** `0x` + 130 hex digits: r ‖ s ‖ v, v = 27 or 28. */
  signature: string
}

/** @deprecated REPLAYABLE FOREVER: see LEGACY_WARNING. */
export interface LegacyCredential {
  legacy: true
  address: string
  /** Signature over the address text (EIP-55) alone. */
  signature: string
}

export function isLegacyCredential(c: Credential | LegacyCredential): c is LegacyCredential {
  return (c as Partial<LegacyCredential>).legacy === true
}

function assertExpiresAt(expiresAt: number): void {
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) {
    throw usageError(`expiry must be a positive whole number of unix seconds, got ${String(expiresAt)}`)
  }
}

/**
 * The exact text a v1 credential signs (LF line ends, no trailing newline). Throws a usage FlytrapError for a
 * client id that cannot be bound, an invalid contract or chain id, or a non-integer expiry.
 */
export function credentialMessage(binding: CredentialBinding): string {
  const { chainId, contract } = normalizeDeployment(binding)
  assertClientId(binding.clientId)
  assertExpiresAt(binding.expiresAt)
  return buildMessage(chainId, contract, binding.clientId, binding.expiresAt)
}

function buildMessage(chainId: bigint, contract: string, clientId: string, expiresAt: number): string {
  return (
    `${CREDENTIAL_HEADER}\n` +
    `chain: ${chainId.toString(10)}\n` +
    `contract: ${contract}\n` +
    `client: ${clientId}\n` +
    `expires: ${expiresAt.toString(10)}`
  )
}

export interface SignCredentialOptions extends CredentialBinding {
  signer: CredentialSigner
  legacy?: false
}

/** @deprecated REPLAYABLE FOREVER: see LEGACY_WARNING. */
export interface SignLegacyCredentialOptions {
  signer: CredentialSigner
  /** Must be given explicitly: the legacy form can be replayed forever by anyone who sees it. */
  legacy: true
}

/** Sign a v1 credential bound to the deployment, the client id and the expiry. */
export function signCredential(opts: SignCredentialOptions): Credential
/**
 * @deprecated Produces the LEGACY static credential (a signature over the address alone). It is REPLAYABLE
 * FOREVER by anyone who sees it and is accepted only by proxies whose operator enabled legacy credentials.
 */
export function signCredential(opts: SignLegacyCredentialOptions): LegacyCredential
export function signCredential(opts: SignCredentialOptions | SignLegacyCredentialOptions): Credential | LegacyCredential {
  if (opts.legacy === true) {
    const address = signerAddress(opts.signer)
    const { signature } = signText(opts.signer, address)
    return { legacy: true, address, signature }
  }
  const message = credentialMessage(opts)
  const { address, signature } = signText(opts.signer, message)
  return { address, expiresAt: opts.expiresAt, signature }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoders

/** MQTT 5 CONNECT user properties carrying a v1 credential. */
export function toUserProperties(cred: Credential): Record<string, string> {
  if (isLegacyCredential(cred)) throw usageError('the legacy credential has no user-property form; use username/password')
  return {
    [UserProperty.address]: cred.address,
    [UserProperty.expires]: String(cred.expiresAt),
    [UserProperty.signature]: cred.signature,
    [UserProperty.version]: '1',
  }
}

/** Username and password (send the password as its UTF-8 bytes; it is ASCII). */
export function toUsernamePassword(cred: Credential | LegacyCredential): { username: string; password: string } {
  if (isLegacyCredential(cred)) return { username: cred.address, password: cred.signature }
  return { username: cred.address, password: `${PASSWORD_PREFIX}${cred.expiresAt}:${cred.signature}` }
}

/**
 * Environment variables for shell use (values are hex or decimal only, except the client id):
 * FLYTRAP_CRED_ADDRESS, FLYTRAP_CRED_EXPIRES, FLYTRAP_CRED_SIG, FLYTRAP_CRED_USERNAME, FLYTRAP_CRED_PASSWORD,
 * and FLYTRAP_CRED_CLIENT_ID when given. A legacy credential has no EXPIRES and sets FLYTRAP_CRED_LEGACY=1.
 */
export function toEnv(cred: Credential | LegacyCredential, opts: { clientId?: string } = {}): Record<string, string> {
  const { username, password } = toUsernamePassword(cred)
  const env: Record<string, string> = { FLYTRAP_CRED_ADDRESS: cred.address }
  if (isLegacyCredential(cred)) env.FLYTRAP_CRED_LEGACY = '1'
  else env.FLYTRAP_CRED_EXPIRES = String(cred.expiresAt)
  env.FLYTRAP_CRED_SIG = cred.signature
  env.FLYTRAP_CRED_USERNAME = username
  env.FLYTRAP_CRED_PASSWORD = password
  if (opts.clientId !== undefined) {
    assertClientId(opts.clientId)
    env.FLYTRAP_CRED_CLIENT_ID = opts.clientId
  }
  return env
}

export type MosquittoVersion = 'mqttv5' | 'mqttv311'

export interface MosquittoArgsOptions {
  /** The client id the credential was signed for. */
  clientId: string
  /** Default `mqttv5`. */
  version?: MosquittoVersion
  /** MQTT 5 only: carry the credential in user properties (default) or in username/password. */
  transport?: 'user-properties' | 'username-password'
}

/**
 * The argv (without the program name) that makes mosquitto_pub / mosquitto_sub present the credential, e.g.
 * `-V mqttv5 -i sensor-1 -D connect user-property flytrap-address 0x… -D connect user-property flytrap-expires …`
 * or `-V mqttv311 -i sensor-1 -u 0x… -P v1:…`. Pass it to spawn/execFile as an array (no shell quoting needed).
 */
export function toMosquittoArgs(cred: Credential | LegacyCredential, opts: MosquittoArgsOptions): string[] {
  assertClientId(opts.clientId)
  const version = opts.version ?? 'mqttv5'
  if (version !== 'mqttv5' && version !== 'mqttv311') throw usageError(`unknown MQTT version ${String(version)}`)
  const transport = opts.transport ?? (version === 'mqttv5' && !isLegacyCredential(cred) ? 'user-properties' : 'username-password')
  const args = ['-V', version, '-i', opts.clientId]
  if (transport === 'user-properties') {
    if (version !== 'mqttv5') throw usageError('user properties need MQTT 5 (-V mqttv5)')
    if (isLegacyCredential(cred)) throw usageError('the legacy credential has no user-property form')
    for (const [key, value] of Object.entries(toUserProperties(cred))) {
      args.push('-D', 'connect', 'user-property', key, value)
    }
    return args
  }
  const { username, password } = toUsernamePassword(cred)
  args.push('-u', username, '-P', password)
  return args
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding from CONNECT

/** The CONNECT fields a credential can travel in (as mqtt-packet / MQTT.js decode them). */
export interface ConnectCredentialFields {
  clientId: string
  username?: string | null
  password?: Buffer | Uint8Array | string | null
  /** MQTT 5 user properties; a key sent more than once arrives as an array. */
  userProperties?: Record<string, string | string[]> | null
}

/** A v1 credential decoded from CONNECT: syntactically valid, not yet verified. */
export interface ParsedCredential {
  kind: 'v1'
  transport: 'user-properties' | 'username-password'
  clientId: string
  /** Claimed address, EIP-55. */
  address: string
  expiresAt: number
  /** `0x` + 130 hex digits (range checks happen in verification). */
  signature: string
}

/** A legacy static credential decoded from CONNECT (password = bare signature). */
export interface ParsedLegacyCredential {
  kind: 'legacy'
  transport: 'username-password'
  clientId: string
  /** Claimed address, EIP-55. */
  address: string
  /** The username exactly as received: the legacy form signs this text. */
  message: string
  signature: string
}

export type CredentialDecodeResult = ParsedCredential | ParsedLegacyCredential | VerifyFailure

const HEX_SIGNATURE = /^0x[0-9a-fA-F]{130}$/
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/
const MAX_PASSWORD_BYTES = 256

function parseExpires(text: string): number | null {
  if (text.length > 16 || !DECIMAL.test(text)) return null
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : null
}

function parseSigText(text: string): string | null {
  return text.length === 132 && HEX_SIGNATURE.test(text) ? text : null
}

/**
 * Decode the credential a CONNECT carries. Never throws: anything unusable is a `missing` or `malformed`
 * failure. Rules (docs/protocol.md, "Decoding"):
 * - any of `flytrap-address`, `flytrap-expires`, `flytrap-sig`, `flytrap-v` present: the user-property carrier;
 *   all three of address/expires/sig are then required, each exactly once, `flytrap-v` if present must be `1`,
 *   and username and password must be absent;
 * - else username and/or password present: both are required; password `v1:<expires>:<0x sig>` is v1, a bare
 *   `0x` + 130 hex digits is the legacy form;
 * - else `missing`.
 */
export function credentialFromConnect(fields: ConnectCredentialFields): CredentialDecodeResult {
  try {
    return decode(fields)
  } catch {
    // Defensive: a getter or proxy object in the input must not crash the connection handler.
    return failure('malformed', 'unreadable CONNECT fields')
  }
}

function decode(fields: ConnectCredentialFields): CredentialDecodeResult {
  if (fields === null || typeof fields !== 'object') return failure('malformed', 'no CONNECT fields')
  const clientId = typeof fields.clientId === 'string' ? fields.clientId : ''
  const props = fields.userProperties
  const hasUsername = fields.username !== undefined && fields.username !== null
  const hasPassword = fields.password !== undefined && fields.password !== null

  let fromProps: Record<string, string | undefined> | undefined
  if (props !== undefined && props !== null) {
    if (typeof props !== 'object') return failure('malformed', 'user properties are not a key/value map')
    const read = readFlytrapProperties(props)
    if (read && !read.ok) return read.failure
    fromProps = read?.values
  }

  if (fromProps) {
    const transport = 'user-properties' as const
    if (hasUsername || hasPassword) {
      return failure('malformed', 'credential in user properties and in username/password: send exactly one', { transport })
    }
    const version = fromProps[UserProperty.version]
    if (version !== undefined && version !== '1') {
      return failure('malformed', `unsupported ${UserProperty.version} (only "1" is defined)`, { transport })
    }
    const addressText = fromProps[UserProperty.address]
    const expiresText = fromProps[UserProperty.expires]
    const sigText = fromProps[UserProperty.signature]
    for (const [key, value] of [
      [UserProperty.address, addressText],
      [UserProperty.expires, expiresText],
      [UserProperty.signature, sigText],
    ] as const) {
      if (value === undefined) return failure('malformed', `user property ${key} is missing`, { transport })
    }
    const address = parseAddress(addressText)
    if (!address) return failure('malformed', `${UserProperty.address} is not a valid address`, { transport })
    const expiresAt = parseExpires(expiresText as string)
    if (expiresAt === null) {
      return failure('malformed', `${UserProperty.expires} is not a canonical decimal number`, { transport, claimedAddress: address })
    }
    const signature = parseSigText(sigText as string)
    if (!signature) {
      return failure('malformed', `${UserProperty.signature} is not 0x + 130 hex digits`, { transport, claimedAddress: address })
    }
    return { kind: 'v1', transport, clientId, address, expiresAt, signature }
  }

  if (!hasUsername && !hasPassword) return failure('missing', 'no credential in CONNECT')
  const transport = 'username-password' as const
  if (!hasUsername) return failure('malformed', 'password without username', { transport })
  if (!hasPassword) return failure('malformed', 'username without password', { transport })
  const username = fields.username
  if (typeof username !== 'string') return failure('malformed', 'username is not a string', { transport })
  const address = parseAddress(username)
  if (!address) return failure('malformed', 'username is not a 0x address', { transport })
  const password = passwordText(fields.password)
  if (password === null) {
    return failure('malformed', 'password is empty, too long or not ASCII', { transport, claimedAddress: address })
  }
  if (password.startsWith(PASSWORD_PREFIX)) {
    const parts = password.split(':')
    if (parts.length !== 3) return failure('malformed', 'password is not v1:<expires>:<signature>', { transport, claimedAddress: address })
    const expiresAt = parseExpires(parts[1] as string)
    if (expiresAt === null) {
      return failure('malformed', 'password expiry is not a canonical decimal number', { transport, claimedAddress: address })
    }
    const signature = parseSigText(parts[2] as string)
    if (!signature) return failure('malformed', 'password signature is not 0x + 130 hex digits', { transport, claimedAddress: address })
    return { kind: 'v1', transport, clientId, address, expiresAt, signature }
  }
  if (/^v[0-9]+:/.test(password)) {
    return failure('malformed', 'unsupported credential version', { transport, claimedAddress: address })
  }
  const legacySig = parseSigText(password)
  if (legacySig) return { kind: 'legacy', transport, clientId, address, message: username, signature: legacySig }
  return failure('malformed', 'password is neither v1:<expires>:<signature> nor a legacy signature', {
    transport,
    claimedAddress: address,
  })
}

const FLYTRAP_KEYS: readonly string[] = [UserProperty.address, UserProperty.expires, UserProperty.signature, UserProperty.version]

/** The FlyTrap user properties, each exactly once as a string; undefined when none is present. */
function readFlytrapProperties(
  props: object,
): { ok: true; values: Record<string, string | undefined> } | { ok: false; failure: VerifyFailure } | undefined {
  const bad = (detail: string) => ({ ok: false as const, failure: failure('malformed', detail, { transport: 'user-properties' }) })
  const out: Record<string, string | undefined> = {}
  let any = false
  for (const key of FLYTRAP_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(props, key)) continue
    any = true
    let value: unknown = (props as Record<string, unknown>)[key]
    if (Array.isArray(value)) {
      if (value.length !== 1) return bad(`user property ${key} is sent ${value.length} times: send it exactly once`)
      value = value[0]
    }
    if (typeof value !== 'string') return bad(`user property ${key} is not a string`)
    out[key] = value
  }
  return any ? { ok: true, values: out } : undefined
}

function passwordText(password: unknown): string | null {
  let bytes: Uint8Array
  if (typeof password === 'string') {
    if (password.length === 0 || password.length > MAX_PASSWORD_BYTES) return null
    bytes = Buffer.from(password, 'utf8')
  } else if (password instanceof Uint8Array) {
    bytes = password
  } else {
    return null
  }
  if (bytes.length === 0 || bytes.length > MAX_PASSWORD_BYTES) return null
  for (const b of bytes) if (b < 0x21 || b > 0x7e) return null
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

// ---------------------------------------------------------------------------------------------------------------
// Verification

export interface VerifyCredentialOptions extends Deployment {
  /** Current unix seconds (default: the clock). */
  now?: number
  /** Longest accepted remaining lifetime in seconds (default 366 days). */
  maxLifetimeSec?: number
  /**
   * Off the packet path only (CLI checks, support tools): after a signature fails, also try these other
   * deployments and client ids, and report `wrong-deployment` / `wrong-client-id` when one of them recovers
   * the claimed address. Each candidate costs one signature recovery; at most 16 are tried. The proxy must not
   * set this for untrusted connections.
   */
  diagnose?: { deployments?: Deployment[]; clientIds?: string[] }
}

const MAX_DIAGNOSE = 16

/**
 * Verify a decoded v1 credential (pass `credentialFromConnect`'s result straight in: failures pass through).
 * Cheap checks (client id, expiry, lifetime) run before the signature recovery. Never throws for client input;
 * throws a usage FlytrapError only for invalid options (the verifier's own configuration).
 */
export function verifyCredential(input: CredentialDecodeResult, opts: VerifyCredentialOptions): VerifyResult {
  const { chainId, contract } = normalizeDeployment(opts)
  const maxLifetime = opts.maxLifetimeSec ?? DEFAULT_MAX_LIFETIME_SEC
  if (!Number.isFinite(maxLifetime) || maxLifetime < 0) throw usageError('maxLifetimeSec must be a non-negative number')
  const now = opts.now ?? Math.floor(Date.now() / 1000)
  if (!Number.isFinite(now)) throw usageError('now must be a number of unix seconds')

  if (input === null || typeof input !== 'object') return failure('malformed', 'no credential')
  if ('ok' in input) return input
  const { transport } = input
  const claimedAddress = input.address
  if (input.kind === 'legacy') {
    return failure('malformed', 'legacy static credential refused: it is replayable forever (see docs/protocol.md)', {
      transport,
      claimedAddress,
      legacy: true,
    })
  }
  if (input.kind !== 'v1') return failure('malformed', 'unknown credential kind')
  const problem = clientIdProblem(input.clientId)
  if (problem) return failure('wrong-client-id', problem, { transport, claimedAddress })
  if (input.expiresAt <= now) return failure('expired', `credential expired at ${input.expiresAt}`, { transport, claimedAddress })
  if (input.expiresAt - now > maxLifetime) {
    return failure('too-long', `expiry is more than ${maxLifetime} s in the future`, { transport, claimedAddress })
  }
  if (!parseSignature(input.signature)) {
    return failure('bad-signature', 'signature is not canonical (v, r or s out of range, or high s)', { transport, claimedAddress })
  }
  const expected = claimedAddress.toLowerCase()
  const recovered = recoverMessageSigner(buildMessage(chainId, contract, input.clientId, input.expiresAt), input.signature)
  if (recovered === expected) return { ok: true, outcome: 'ok', address: claimedAddress, transport, expiresAt: input.expiresAt, legacy: false }

  if (opts.diagnose) {
    let budget = MAX_DIAGNOSE
    for (const d of opts.diagnose.deployments ?? []) {
      if (budget-- <= 0) break
      const alt = normalizeDeployment(d)
      if (alt.chainId === chainId && alt.contract === contract) continue
      if (recoverMessageSigner(buildMessage(alt.chainId, alt.contract, input.clientId, input.expiresAt), input.signature) === expected) {
        return failure('wrong-deployment', `signed for chain ${alt.chainId} contract ${alt.contract}`, { transport, claimedAddress })
      }
    }
    for (const id of opts.diagnose.clientIds ?? []) {
      if (budget-- <= 0) break
      if (id === input.clientId || clientIdProblem(id)) continue
      if (recoverMessageSigner(buildMessage(chainId, contract, id, input.expiresAt), input.signature) === expected) {
        return failure('wrong-client-id', `signed for client id ${JSON.stringify(id)}`, { transport, claimedAddress })
      }
    }
  }
  return failure('bad-signature', 'signature does not recover to the claimed address for this deployment, client id and expiry', {
    transport,
    claimedAddress,
  })
}

/**
 * Verify a LEGACY static credential (signature over the username text alone). REPLAYABLE FOREVER: the proxy
 * calls this only when the operator explicitly enabled legacy credentials, and should log every use. A v1
 * credential given here is `malformed` (verify it with verifyCredential).
 */
export function verifyLegacyCredential(input: CredentialDecodeResult): VerifyResult {
  if (input === null || typeof input !== 'object') return failure('malformed', 'no credential')
  if ('ok' in input) return input
  if (input.kind !== 'legacy') return failure('malformed', 'not a legacy credential', { transport: input.transport })
  const { transport } = input
  const claimedAddress = input.address
  if (typeof input.message !== 'string' || parseAddress(input.message) !== claimedAddress) {
    return failure('malformed', 'legacy message is not the claimed address', { transport, claimedAddress })
  }
  if (!parseSignature(input.signature)) {
    return failure('bad-signature', 'signature is not canonical (v, r or s out of range, or high s)', { transport, claimedAddress })
  }
  if (recoverMessageSigner(input.message, input.signature) !== claimedAddress.toLowerCase()) {
    return failure('bad-signature', 'signature does not recover to the claimed address', { transport, claimedAddress })
  }
  return { ok: true, outcome: 'ok', address: claimedAddress, transport, legacy: true }
}

/** Convenience for commands: throw a verification FlytrapError unless the result is ok. */
export function assertVerified(result: VerifyResult): asserts result is Extract<VerifyResult, { ok: true }> {
  if (!result.ok) throw new FlytrapError(`credential refused (${result.outcome}): ${result.detail}`, { exit: 'verification' })
}
