/**
 * What an open session re-checks while it lives: packets and deliveries are decided per packet already, so
 * what remains is the will (the broker would publish it later, on an abrupt end) and kicks (a ban, a revoked
 * will). A will that is no longer allowed never reaches the broker's publish: the session sends a normal
 * DISCONNECT upstream instead, which discards it.
 */
import { disconnectV5, encodePacket, type ProtocolVersion } from '../mqtt/packets.js'
import { ReasonCode } from '../mqtt/reason-codes.js'
import type { PolicyView } from '../policy/types.js'
import type { DecisionInput, Session } from './session.js'
import { FIN } from './sockets.js'

/** What the live checks need of their session. */
export interface LiveHost {
  /** The session's public state. */
  readonly session: Pick<Session, 'phase' | 'version' | 'address' | 'country' | 'will'>
  readonly policy: PolicyView
  decision(e: DecisionInput): void
  /** Answers a CONNECT that is still waiting for the broker with this refusal. */
  refuseConnect(reasonCode: number, why: string): void
  close(why: string, last: { toClient?: Buffer; toBroker?: Buffer }): void
}

export class LiveChecks {
  constructor(private readonly h: LiveHost) {}

  /** The policy changed: a will that is no longer allowed ends the session (and is discarded upstream). */
  recheck(): void {
    const s = this.h.session
    if (s.phase !== 'open' || !s.will) return
    const d = this.h.policy.canPublish(s.address!, s.will.topic, s.country)
    if (d.allowed) return
    this.h.decision({ kind: 'will', allowed: false, reason: d.reason, topic: s.will.topic, detail: 'will no longer allowed: session ended' })
    this.kick(ReasonCode.NotAuthorized, 'will-revoked')
  }

  /** Ends the session from the proxy side: DISCONNECT with a reason to a v5 client, will discarded upstream. */
  kick(reasonCode: number, why: string): void {
    const s = this.h.session
    if (s.phase === 'closed') return
    // Still authenticating: the ban check at CONNECT and after authentication refuses it with a CONNACK.
    if (s.phase === 'connect' || s.phase === 'verifying' || s.phase === 'auth') return
    // Authenticated, waiting for the broker: answer the CONNECT with the reason (the upstream is dropped).
    if (s.phase === 'upstream') return this.h.refuseConnect(reasonCode, why)
    // 0x8A (Banned) exists only in CONNACK; DISCONNECT says Administrative action (0x98) instead.
    const code = reasonCode === ReasonCode.Banned ? ReasonCode.AdministrativeAction : reasonCode
    this.h.close(why, { toClient: s.version === 5 ? encodePacket(disconnectV5(code), 5) : FIN, toBroker: normalDisconnect(s.version) })
  }

  /**
   * The client sent DISCONNECT 0x04, asking the broker to publish the will: true (and the refusal told) when
   * the will is no longer allowed now (grants expire).
   */
  willRefusedAtDisconnect(): boolean {
    const s = this.h.session
    if (!s.will || this.h.policy.canPublish(s.address!, s.will.topic, s.country).allowed) return false
    this.h.decision({ kind: 'will', allowed: false, reason: 'no-grant', topic: s.will.topic, detail: 'will refused at DISCONNECT 0x04' })
    return true
  }

  /**
   * An open session ends abruptly (`why`), so the broker would publish the will: the normal DISCONNECT that
   * discards it when it is no longer allowed, else undefined.
   */
  discardRevokedWill(why: string): Buffer | undefined {
    const s = this.h.session
    if (!s.will || why === 'client-disconnected' || this.h.policy.canPublish(s.address!, s.will.topic, s.country).allowed) return undefined
    return normalDisconnect(s.version)
  }
}

/** A normal DISCONNECT towards the broker: it ends the upstream session and discards the will. */
export function normalDisconnect(version: ProtocolVersion): Buffer {
  return encodePacket(version === 5 ? disconnectV5(ReasonCode.Success) : { cmd: 'disconnect' }, version)
}
