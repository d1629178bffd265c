/**
 * A session's admission: everything from the client's first CONNECT (and, with enhanced authentication, its
 * AUTH answer) until the broker's CONNACK opens the session or the proxy refuses it.
 *
 * In order: the protocol version, the IP ban, the policy being synced, the credential (in the verify pool, or
 * the AUTH challenge), the address ban, the will's publish authorisation; then the CONNECT goes upstream
 * without the credential, under the authenticated address's client id. Every refusal is a CONNACK with a
 * reason code and a decision event; refused credentials and wills count towards a ban. Which broker, and the
 * CONNECT as the proxy presents it there, are the session's (`proxy/upstreams.ts`).
 */
import type { Frame } from '../mqtt/framing.js'
import { PacketType } from '../mqtt/framing.js'
import {
  connackRefusal,
  decodePacket,
  encodePacket,
  type ConnackPacket,
  type ConnectPacket,
  type Packet,
  type ProtocolVersion,
} from '../mqtt/packets.js'
import { MqttProtocolError, ProtocolError, ReasonCode } from '../mqtt/reason-codes.js'
import { validateTopicName } from '../policy/filter.js'
import type { Decision } from '../policy/types.js'
import { answerChallenge, authenticateConnect, AUTH_METHOD, credentialFields, usesEnhancedAuth, type ConnectAuth } from './authenticate.js'
import type { DecisionInput, Session, SessionContext } from './session.js'

/** What the handshake needs of the server around the session. */
export type HandshakeContext = Pick<SessionContext, 'auth' | 'verify' | 'policy' | 'failOpen' | 'isBanned' | 'recordFailure'>

/** What the handshake needs of its session. */
export interface HandshakeHost {
  /** The session's public state, which the handshake fills in as it learns it. */
  readonly session: Pick<Session, 'ip' | 'country' | 'phase' | 'version' | 'clientId' | 'address' | 'will'>
  decision(e: DecisionInput): void
  toClient(bytes: Buffer): void
  /** Runs work as the client's processing: what it throws is the client's protocol error. */
  asClient(work: () => void): void
  close(why: string, last: { toClient?: Buffer }): void
  /** Starts opening the broker connection while the credential is checked (nothing is sent on it yet). */
  prepareUpstream(): void
  /**
   * Picks a healthy broker and sends it the client's CONNECT as the proxy presents it there (credential
   * stripped, the proxy's identity, the client id under the address: `upstreamConnectPacket`); the broker's
   * frames come back through onConnack.
   */
  connectUpstream(connect: ConnectPacket, address: string): void
  /** The broker refused the CONNECT: what the client is told (an identity refusal of the proxy is the server's fault). */
  brokerRefused(connack: ConnackPacket, bytes: Buffer): Buffer
  /** The broker accepted: the session is open, with the CONNACK to relay and the aliases the broker allows. */
  open(connack: Buffer, topicAliasMaximum: number): void
}

export class Handshake {
  /** The client's CONNECT, once read (a refusal answers it with a v5 CONNACK rather than a bare FIN). */
  connect?: ConnectPacket
  /** The client ran enhanced authentication (MQTT 5 AUTH): re-authentication is refused, the CONNACK names the method. */
  enhancedAuth = false
  private challenge?: { address: string; clientId: string; nonce: Buffer; issuedAtMs: number }

  constructor(
    private readonly h: HandshakeHost,
    private readonly ctx: HandshakeContext,
  ) {}

  /** A client frame before admission: the CONNECT (phase 'connect') or the answer to the challenge ('auth'). */
  onClientFrame(frame: Frame): void {
    if (this.h.session.phase === 'connect') this.onConnect(frame)
    else this.onAuthAnswer(frame)
  }

  private onConnect(frame: Frame): void {
    const s = this.h.session
    if (frame.type !== PacketType.CONNECT) throw new ProtocolError('the first packet must be CONNECT')
    let connect: ConnectPacket
    try {
      connect = decodePacket(frame.bytes, 5) as ConnectPacket
    } catch (err) {
      if (err instanceof MqttProtocolError && err.reasonCode === ReasonCode.UnsupportedProtocolVersion) {
        return this.refuse(ReasonCode.UnsupportedProtocolVersion, 'unsupported-protocol', 4)
      }
      throw err
    }
    if (connect.protocolVersion !== 4 && connect.protocolVersion !== 5) {
      return this.refuse(ReasonCode.UnsupportedProtocolVersion, 'unsupported-protocol', 4)
    }
    s.version = connect.protocolVersion
    this.connect = connect
    s.clientId = connect.clientId

    if (this.ctx.isBanned(s.ip)) return this.refuse(ReasonCode.Banned, 'banned')
    if (!this.ctx.policy.synced && !this.ctx.failOpen) return this.refuse(ReasonCode.ServerUnavailable, 'not-synced')

    if (!usesEnhancedAuth(connect)) {
      s.phase = 'verifying'
      this.h.prepareUpstream()
      const verified = this.ctx.verify(credentialFields(connect))
      // Checked inline (the pool found it pays): decided now, as part of this frame.
      if (!(verified instanceof Promise)) return this.afterAuth(verified)
      verified.then(
          (auth) => {
            if (s.phase === 'verifying') this.h.asClient(() => this.afterAuth(auth))
          },
          // The verifier failed (a worker died): the proxy's fault, not the client's; nothing is counted.
          () => {
            if (s.phase === 'verifying') this.refuse(ReasonCode.ServerUnavailable, 'verify-failed')
          },
        )
      return
    }
    const auth = authenticateConnect(connect, this.ctx.auth)
    if (auth.kind === 'challenge') {
      this.challenge = auth
      this.enhancedAuth = true
      s.phase = 'auth'
      this.h.toClient(encodePacket({ cmd: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: AUTH_METHOD, authenticationData: auth.nonce } }, 5))
      return
    }
    this.afterAuth(auth)
  }

  private onAuthAnswer(frame: Frame): void {
    if (frame.type === PacketType.DISCONNECT) return this.h.close('client-disconnected', {})
    if (frame.type !== PacketType.AUTH) throw new ProtocolError('expected AUTH in answer to the challenge')
    const packet = decodePacket(frame.bytes, 5) as Extract<Packet, { cmd: 'auth' }>
    const pending = this.challenge!
    this.challenge = undefined // single use, whatever the answer
    if (packet.properties?.authenticationMethod !== AUTH_METHOD) {
      return this.refuse(ReasonCode.BadAuthenticationMethod, 'bad-auth-method')
    }
    this.h.prepareUpstream() // the TCP handshake runs while the signature is checked
    this.afterAuth(answerChallenge(pending, packet.properties.authenticationData, this.ctx.auth))
  }

  private afterAuth(auth: ConnectAuth): void {
    const s = this.h.session
    const connect = this.connect!
    if (auth.kind !== 'ok') {
      if (auth.kind === 'refuse') {
        const claimed = auth.result.ok ? undefined : auth.result.claimedAddress
        this.ctx.recordFailure(s.ip, undefined)
        this.h.decision({ kind: 'connect', allowed: false, reason: auth.result.outcome, address: claimed, verified: false, detail: auth.result.ok ? undefined : auth.result.detail })
        return this.refuse(auth.reasonCode, null)
      }
      return
    }
    const address = auth.result.address
    s.address = address
    if (this.ctx.isBanned(s.ip, address)) return this.refuse(ReasonCode.Banned, 'banned')

    if (connect.will) {
      const decision = this.checkWill(connect.will.topic)
      if (!decision.allowed) {
        this.ctx.recordFailure(s.ip, address)
        return this.refuse(ReasonCode.NotAuthorized, null)
      }
      s.will = { topic: connect.will.topic }
    }
    this.h.decision({ kind: 'connect', allowed: true, reason: auth.result.legacy ? 'legacy-credential' : auth.result.transport })
    this.openUpstream(connect, address)
  }

  private checkWill(topic: string): Decision {
    const s = this.h.session
    const invalid = validateTopicName(topic)
    const d: Decision = invalid ? { allowed: false, reason: 'invalid', sensitive: false } : this.ctx.policy.canPublish(s.address!, topic, s.country)
    this.h.decision({ kind: 'will', allowed: d.allowed, reason: d.reason, topic, sensitive: d.sensitive })
    return d
  }

  /** Answers the CONNECT with a refusal and ends the session (the socket goes once the CONNACK is out). */
  refuse(reasonCode: number, reason: string | null, version: ProtocolVersion = this.h.session.version): void {
    if (reason) this.h.decision({ kind: 'connect', allowed: false, reason })
    this.h.close('connect-refused', { toClient: encodePacket(connackRefusal(version, reasonCode), version) })
  }

  private openUpstream(connect: ConnectPacket, address: string): void {
    this.h.session.phase = 'upstream'
    this.h.connectUpstream(connect, address)
  }

  /** The broker's answer to the CONNECT: a refusal is told to the client (`brokerRefused`), a success opens the session. */
  onConnack(frame: Frame): void {
    const s = this.h.session
    if (frame.type !== PacketType.CONNACK) throw new ProtocolError('the broker did not answer CONNECT with CONNACK')
    const connack = decodePacket(frame.bytes, s.version) as ConnackPacket
    let bytes = frame.bytes
    if (this.enhancedAuth && connack.reasonCode === 0) {
      // The client ran enhanced authentication with us: its CONNACK must name the method (MQTT 5 §3.2.2.3.17).
      bytes = encodePacket({ ...connack, properties: { ...connack.properties, authenticationMethod: AUTH_METHOD } }, 5)
    }
    if ((connack.returnCode ?? connack.reasonCode ?? 0) !== 0) return this.h.close('broker-refused', { toClient: this.h.brokerRefused(connack, bytes) })
    this.h.open(bytes, s.version === 5 ? (connack.properties?.topicAliasMaximum ?? 0) : 0)
  }
}
