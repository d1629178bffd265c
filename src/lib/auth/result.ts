/**
 * Typed verification outcomes shared by every credential transport, and their CONNACK reason codes.
 * Verification never throws on anything a client sent: it returns one of these.
 */

/** How a credential reached the proxy. */
export type CredentialTransport = 'user-properties' | 'username-password' | 'enhanced-auth'

export type VerifyOutcome =
  /** The signature recovers to the claimed address under this deployment, client id and expiry. */
  | 'ok'
  /** No credential at all: no username, no password, no `flytrap-*` user property, no auth method. */
  | 'missing'
  /** Present but not decodable: wrong field count, bad hex, wrong length, non-canonical number, duplicate... */
  | 'malformed'
  /** Decodable, but the signature is not canonical or does not recover to the claimed address. */
  | 'bad-signature'
  /** The expiry (or the challenge nonce's lifetime) has passed. */
  | 'expired'
  /** The expiry lies further in the future than the verifier's maximum lifetime. */
  | 'too-long'
  /** The signature is valid for another chain/contract (only reported when the verifier asked to diagnose). */
  | 'wrong-deployment'
  /**
   * The client id cannot be bound (empty, or carries CR/LF/NUL/lone surrogates), or (only when diagnosing)
   * the signature is valid for another client id.
   */
  | 'wrong-client-id'

export type FailureOutcome = Exclude<VerifyOutcome, 'ok'>

export interface VerifySuccess {
  ok: true
  outcome: 'ok'
  /** The authenticated address, EIP-55 checksummed. */
  address: string
  transport: CredentialTransport
  /** Unix seconds; absent for the challenge transport and for legacy credentials, which carry no expiry. */
  expiresAt?: number
  /** True only for the replayable legacy form (verifyLegacyCredential). */
  legacy: boolean
}

export interface VerifyFailure {
  ok: false
  outcome: FailureOutcome
  /** For logs and operators; never echo secrets. Not meant to be sent to the client. */
  detail: string
  transport?: CredentialTransport
  /** The address the client claimed, when it could be decoded (EIP-55). Not authenticated. */
  claimedAddress?: string
  /** Set when a legacy (replayable) credential was presented to a verifier that does not accept it. */
  legacy?: true
}

export type VerifyResult = VerifySuccess | VerifyFailure

export function failure(
  outcome: FailureOutcome,
  detail: string,
  extra: Omit<VerifyFailure, 'ok' | 'outcome' | 'detail'> = {},
): VerifyFailure {
  return { ok: false, outcome, detail, ...extra }
}

/** MQTT 5 CONNACK reason codes used by FlyTrap. */
export const ReasonCode = {
  success: 0x00,
  clientIdentifierNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  badAuthenticationMethod: 0x8c,
} as const

/** MQTT 3.1 / 3.1.1 CONNACK return codes used by FlyTrap. */
export const ReturnCode311 = {
  accepted: 0,
  identifierRejected: 2,
  badUserNameOrPassword: 4,
  notAuthorized: 5,
} as const

/**
 * The CONNACK code for a verification result. `protocolVersion` is the CONNECT protocol level: 3 (3.1),
 * 4 (3.1.1) or 5. Mapping (docs/protocol.md, "Reason codes"):
 *
 * | outcome                                      | MQTT 5                              | 3.1 / 3.1.1 |
 * | -------------------------------------------- | ----------------------------------- | ----------- |
 * | ok                                           | 0x00                                | 0           |
 * | missing                                      | 0x87 Not authorized                 | 5           |
 * | wrong-client-id                              | 0x85 Client Identifier not valid    | 2           |
 * | any other failure, user properties/password  | 0x86 Bad User Name or Password      | 4           |
 * | any other failure, enhanced authentication   | 0x87 Not authorized                 | (n/a)       |
 */
export function connackCode(result: VerifyResult | FailureOutcome, protocolVersion: number): number {
  const outcome = typeof result === 'string' ? result : result.outcome
  const enhanced = typeof result !== 'string' && result.transport === 'enhanced-auth'
  if (protocolVersion === 5) {
    if (outcome === 'ok') return ReasonCode.success
    if (outcome === 'missing') return ReasonCode.notAuthorized
    if (outcome === 'wrong-client-id') return ReasonCode.clientIdentifierNotValid
    return enhanced ? ReasonCode.notAuthorized : ReasonCode.badUserNameOrPassword
  }
  if (outcome === 'ok') return ReturnCode311.accepted
  if (outcome === 'missing') return ReturnCode311.notAuthorized
  if (outcome === 'wrong-client-id') return ReturnCode311.identifierRejected
  return ReturnCode311.badUserNameOrPassword
}
