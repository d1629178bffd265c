/**
 * CONNECT authentication for the proxy: picks the credential carrier (MQTT 5 enhanced authentication, user
 * properties, or username/password), verifies it against this deployment, and says what to answer.
 * Pure and synchronous: the CPU cost is one signature recovery.
 */
// The modules themselves, not auth/index.js: its signing half (binding.ts) loads ethers, ~20 MiB in every verify worker.
import { AUTH_METHOD, challengeFromConnect, newNonce, verifyChallenge } from '../auth/challenge.js'
import { credentialFromConnect, verifyCredential, verifyLegacyCredential } from '../auth/credential.js'
import { connackCode, type VerifyResult } from '../auth/result.js'
import type { ConnectPacket } from '../mqtt/packets.js'
import { ReasonCode } from '../mqtt/reason-codes.js'

export interface AuthConfig {
  chainId: bigint
  contract: string
  maxLifetimeSec: number
  allowLegacy: boolean
}

export type ConnectAuth =
  | { kind: 'ok'; result: Extract<VerifyResult, { ok: true }> }
  | { kind: 'refuse'; reasonCode: number; result: VerifyResult }
  /** MQTT 5 enhanced authentication: send AUTH 0x18 with this nonce and wait for the signature. */
  | { kind: 'challenge'; address: string; clientId: string; nonce: Buffer; issuedAtMs: number }

export function authenticateConnect(connect: ConnectPacket, cfg: AuthConfig): ConnectAuth {
  // Reason codes here are always MQTT 5's; connackRefusal maps them to 3.1.1 return codes when it answers.
  const props = connect.properties
  if (usesEnhancedAuth(connect) && props?.authenticationMethod !== undefined) {
    if (props.authenticationMethod !== AUTH_METHOD) {
      return { kind: 'refuse', reasonCode: ReasonCode.BadAuthenticationMethod, result: { ok: false, outcome: 'malformed', detail: 'unsupported authentication method', transport: 'enhanced-auth' } }
    }
    const request = challengeFromConnect({ clientId: connect.clientId, authenticationMethod: props.authenticationMethod, authenticationData: props.authenticationData })
    if ('ok' in request) return { kind: 'refuse', reasonCode: connackCode(request, 5), result: request }
    return { kind: 'challenge', address: request.address, clientId: request.clientId, nonce: newNonce(), issuedAtMs: Date.now() }
  }

  return authenticateFields(credentialFields(connect), cfg)
}

/** The CONNECT fields a v1/legacy credential travels in (plain data: they cross to verification workers). */
export interface CredentialFields {
  clientId: string
  version: 4 | 5
  username?: string
  password?: Uint8Array
  userProperties?: Record<string, string | string[]>
}

export function credentialFields(connect: ConnectPacket): CredentialFields {
  return {
    clientId: connect.clientId,
    version: connect.protocolVersion === 5 ? 5 : 4,
    username: connect.username,
    password: connect.password,
    userProperties: connect.properties?.userProperties as Record<string, string | string[]> | undefined,
  }
}

/** True when the CONNECT uses MQTT 5 enhanced authentication (handled on the main thread: it needs a round trip). */
export function usesEnhancedAuth(connect: ConnectPacket): boolean {
  return connect.protocolVersion === 5 && connect.properties?.authenticationMethod !== undefined
}

/** Verifies user-property or username/password credentials. Pure; runs inline or in a worker. */
export function authenticateFields(fields: CredentialFields, cfg: AuthConfig): Exclude<ConnectAuth, { kind: 'challenge' }> {
  const decoded = credentialFromConnect({
    clientId: fields.clientId,
    username: fields.username,
    password: fields.password,
    userProperties: fields.userProperties,
  })
  const result =
    !('ok' in decoded) && decoded.kind === 'legacy'
      ? cfg.allowLegacy
        ? verifyLegacyCredential(decoded)
        : ({ ok: false, outcome: 'malformed', detail: 'legacy (replayable) credentials are not accepted', transport: 'username-password', claimedAddress: decoded.address, legacy: true } as const)
      : verifyCredential(decoded, { chainId: cfg.chainId, contract: cfg.contract, maxLifetimeSec: cfg.maxLifetimeSec })
  if (result.ok) return { kind: 'ok', result }
  return { kind: 'refuse', reasonCode: connackCode(result, 5), result }
}

/** Checks the device's AUTH answer to a challenge (single use: the caller drops the nonce afterwards). */
export function answerChallenge(
  pending: { address: string; clientId: string; nonce: Buffer; issuedAtMs: number },
  response: unknown,
  cfg: AuthConfig,
): ConnectAuth {
  const result = verifyChallenge({ ...pending, response }, { chainId: cfg.chainId, contract: cfg.contract })
  if (result.ok) return { kind: 'ok', result }
  return { kind: 'refuse', reasonCode: connackCode(result, 5), result }
}

export { AUTH_METHOD }
