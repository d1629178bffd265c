/**
 * One client connection through the proxy: client socket ⇄ Session ⇄ upstream broker socket.
 *
 * Phases: CONNECT (authenticate, authorise the will, open upstream: handshake.ts) → open (relay with
 * decisions, here; live re-checks of the will and kicks: live-checks.ts) → closed (sockets.ts ends the sockets).
 * Each direction has one dispatcher that switches on the packet type. Packets that pass unchanged are
 * forwarded as their original bytes; only packets that must change are re-encoded. Refused packets are
 * answered locally and never reach the broker; refused deliveries are acknowledged to the broker so it
 * does not resend them. Every decision is synchronous and made from the in-memory policy.
 *
 * Each side's bytes are processed under that side's guard: an error a packet causes is blamed on the side that
 * sent it (logged, answered with its reason code, counted towards a ban for a client), never on the other. What
 * a client pipelines behind its CONNECT stays unread until the broker's CONNACK opens the session, and is then
 * processed as the client's, exactly as if it had arrived later.
 *
 * Every ending goes through close(): a last packet (a CONNACK refusal, a DISCONNECT) is flushed with a FIN,
 * reading resumes so the peer's close is seen, and the socket is destroyed when the peer closes or after
 * LINGER_MS, whichever comes first. No socket outlives its session by more than that.
 *
 * When the context's onDecision returns a promise (the decision is being made durable), what the session
 * sends the client from then on is held, in order, until it resolves: the CONNACK, SUBACK, PUBACK/PUBREC or
 * sensitive delivery that acknowledges the decision never overtakes its journal entry. QoS 1/2 publishes
 * are forwarded at once and the broker's PUBACK/PUBREC is what waits, so the fdatasync overlaps the
 * broker's round trip (a crash before it leaves the client without an ack: it resends).
 */
import type { Socket } from 'node:net'
import { FrameReader, PacketType as T, type Frame } from '../mqtt/framing.js'
import {
  connackRefusal,
  decodePacket,
  disconnectV5,
  encodePacket,
  pubackFor,
  pubcompFor,
  pubrecFor,
  subackFor,
  type ConnectPacket,
  type ProtocolVersion,
  type PublishPacket,
  type SubackPacket,
  type SubscribePacket,
} from '../mqtt/packets.js'
import { TopicAliasTable } from '../mqtt/aliases.js'
import { readPublishHeader } from '../mqtt/publish-header.js'
import { MalformedPacketError, MqttProtocolError, ProtocolError, ReasonCode, SUBACK_FAILURE_V4 } from '../mqtt/reason-codes.js'
import { parseShared, validateTopicFilter, validateTopicName } from '../policy/filter.js'
import type { DecisionEvent, PolicyView } from '../policy/types.js'
import type { AuthConfig, ConnectAuth, CredentialFields } from './authenticate.js'
import { Handshake } from './handshake.js'
import { LiveChecks, normalDisconnect } from './live-checks.js'
import { endSocket, FIN, LINGER_MS } from './sockets.js'
import { upstreamConnectPacket, type Upstream, type Upstreams } from './upstreams.js'

export { upstreamClientId } from './upstreams.js'


/** Fixed-header flags each client→server packet must carry (MQTT 5 §2.1.3); PUBLISH is checked on its own. */
const CLIENT_FLAGS: Partial<Record<number, number>> = { [T.PUBACK]: 0, [T.PUBREC]: 0, [T.PUBREL]: 2, [T.PUBCOMP]: 0, [T.SUBSCRIBE]: 2, [T.UNSUBSCRIBE]: 2, [T.PINGREQ]: 0, [T.DISCONNECT]: 0, [T.AUTH]: 0, [T.CONNECT]: 0 }

type Side = 'client' | 'broker'

/** What a session needs from the server around it. */
export interface SessionContext {
  auth: AuthConfig
  /** Verifies a user-property or username/password credential (in a worker pool or inline). */
  /** The result itself when it was checked inline, a promise when a worker checks it. */
  verify(fields: CredentialFields): Exclude<ConnectAuth, { kind: 'challenge' }> | Promise<Exclude<ConnectAuth, { kind: 'challenge' }>>
  policy: PolicyView & { readonly synced: boolean }
  failOpen: boolean
  usernameFromAddress: boolean
  maxPacketSize: number
  connectTimeoutMs: number
  drainTimeoutMs: number
  /** The brokers: a connected socket to a healthy one, and what the broker did with the proxy's CONNECT. */
  upstreams: Upstreams
  countryOf(ip: string): string | null
  /** True when this IP (or authenticated address) is banned now. */
  isBanned(ip: string, address?: string): boolean
  /** Counts a failure (refused auth or packet) towards a ban. */
  recordFailure(ip: string, address?: string): void
  /** Returns a promise when the decision is being made durable: what acknowledges it waits for it. */
  onDecision(e: DecisionEvent): Promise<unknown> | null | void
  /** Tell allowed deliveries on non-sensitive topics too (ProxyOptions.decisionDeliveries 'all'). */
  allDeliveries?: boolean
  /** The proxy's CONNECT was written to the broker (starts the broker-latency clock). */
  onUpstreamConnect?(s: Session): void
  onOpen(s: Session): void
  onClose(s: Session): void
  onProtocolError(s: Session, where: Side, err: Error): void
}

export type Phase = 'connect' | 'verifying' | 'auth' | 'upstream' | 'open' | 'closed'

/** A decision as the session's parts tell it: the session adds who (IP, address, client id). */
export type DecisionInput = Omit<DecisionEvent, 'ip' | 'address' | 'clientId'> & { address?: string }

/**
 * A proxy holds tens of thousands of idle sessions, so a session allocates what it needs when it first needs it
 * (alias bindings, the QoS 2 and SUBACK bookkeeping, drain timers, the live checks), keeps nothing of its
 * admission once open (the handshake, its CONNECT and credential, the connect timer, the upstream promise), and
 * its sockets' listeners are functions shared by every session (`this` is the socket, SESSION its session).
 */
const SESSION = Symbol('flytrap.session')
type SessionSocket = Socket & { [SESSION]?: Session }

/** Aliases towards the broker when the broker allows none (a table of maximum 0 never binds: one serves all). */
const NO_CLIENT_ALIASES = new TopicAliasTable(0, 'client-to-broker')
/** The proxy asks the broker for no aliases (Topic Alias Maximum 0), so every delivery names its topic. */
const NO_DELIVERY_ALIASES = new TopicAliasTable(0, 'broker-to-client')

/** Client-bound items waiting for the decisions before them to be durable: bytes, a pending decision, a final step. */
type Held = Buffer | { durable: boolean } | (() => void)
/** A journal this far behind ends the connection rather than buffer without bound. */
const MAX_HELD = 65_536

export class Session {
  readonly ip: string
  readonly country: string | null
  address?: string
  clientId?: string
  version: ProtocolVersion = 4
  phase: Phase = 'connect'
  will?: { topic: string }
  /** The broker this session's upstream connection goes to. */
  broker?: Upstream

  private readonly client: Socket
  private upstream?: Socket
  /** The broker connection being opened while the credential is checked (prepareUpstream). */
  private upstreamOpening?: Promise<{ socket: Socket; upstream: Upstream }>
  /** That connection once open, until the session takes it (or ends and destroys it). */
  private spareUpstream?: Socket
  private readonly ctx: SessionContext
  private readonly clientReader: FrameReader
  private readonly upstreamReader: FrameReader
  private connectTimer?: NodeJS.Timeout
  /** Until the session opens (or ends): then nothing of the admission — CONNECT, credential, challenge — is kept. */
  private handshake?: Handshake
  /** The client ran enhanced authentication (MQTT 5 AUTH): re-authentication is refused. */
  private enhancedAuth = false
  private liveChecks?: LiveChecks
  /** Client→broker aliases as the client sent them (set at open), and the bindings the broker has actually seen. */
  private clientAliases = NO_CLIENT_ALIASES
  private brokerSeenAliases?: Map<number, string>
  /** SUBSCRIBEs forwarded with some filters removed: the codes to merge into the broker's SUBACK. */
  private pendingSubacks?: Map<number, (number | null)[]>
  /** QoS 2 publishes refused to a 3.1.1 client (which got PUBREC): answer its PUBREL locally. */
  private refusedQos2FromClient?: Set<number>
  /** QoS 2 deliveries dropped towards the client (broker got our PUBREC): answer the broker's PUBREL locally. */
  private droppedQos2FromBroker?: Set<number>
  private drainTimers?: Map<Socket, NodeJS.Timeout>
  /** Empty unless a decision is not durable yet (see hold()). */
  private held: Held[] = []
  /** Why the session ended (for logs and the journal). */
  closeReason?: string

  constructor(client: Socket, ip: string, ctx: SessionContext, initial?: Buffer) {
    this.client = client
    this.ip = ip
    this.ctx = ctx
    this.country = ctx.countryOf(ip)
    this.clientReader = new FrameReader({ maxPacketSize: ctx.maxPacketSize })
    // Deliveries can be a little larger than what clients may send (the broker adds properties).
    this.upstreamReader = new FrameReader({ maxPacketSize: Math.min(ctx.maxPacketSize + 65_536, 268_435_460) })
    this.handshake = new Handshake(
      {
        session: this,
        decision: (e) => this.decision(e),
        toClient: (bytes) => this.toClient(bytes),
        asClient: (work) => this.guarded('client', work),
        close: (why, last) => this.close(why, last),
        prepareUpstream: () => this.prepareUpstream(),
        connectUpstream: (connect, address) => this.openUpstream(connect, address),
        brokerRefused: (connack, bytes) => this.ctx.upstreams.refused(this.broker!, connack, bytes, this.version, this.clientId),
        open: (connack, topicAliasMaximum) => this.open(connack, topicAliasMaximum),
      },
      ctx,
    )

    client.setNoDelay(true)
    ;(client as SessionSocket)[SESSION] = this
    client.on('data', Session.clientData)
    client.on('error', Session.clientError)
    client.on('close', Session.clientClosed)
    this.connectTimer = setTimeout(Session.connectTimeout, ctx.connectTimeoutMs, this)
    if (initial && initial.length > 0) this.onClientData(initial)
  }

  // The sockets' listeners, shared by every session: `this` is the socket.
  private static clientData(this: SessionSocket, chunk: Buffer): void {
    this[SESSION]?.onClientData(chunk)
  }
  private static clientError(this: SessionSocket): void {
    this[SESSION]?.close('client-error')
  }
  private static clientClosed(this: SessionSocket): void {
    this[SESSION]?.close('client-closed')
  }
  private static upstreamData(this: SessionSocket, chunk: Buffer): void {
    this[SESSION]?.onUpstreamData(chunk)
  }
  private static upstreamError(this: SessionSocket): void {
    const s = this[SESSION]
    s?.close('broker-error', s.brokerGone())
  }
  private static upstreamClosed(this: SessionSocket): void {
    const s = this[SESSION]
    s?.close('broker-closed', s.brokerGone())
  }
  private static connectTimeout(s: Session): void {
    s.close('connect-timeout')
  }

  /** Made on first use: most sessions never need them (no will, never kicked). */
  private get live(): LiveChecks {
    this.liveChecks ??= new LiveChecks({
      session: this,
      policy: this.ctx.policy,
      decision: (e) => this.decision(e),
      refuseConnect: (reasonCode, why) => this.handshake?.refuse(reasonCode, why),
      close: (why, last) => this.close(why, last),
    })
    return this.liveChecks
  }

  // ------------------------------------------------------------------ client → proxy

  private onClientData(chunk: Buffer): void {
    if (this.phase === 'closed') return
    // Not MQTT at all (an HTTP request, a scanner): refuse on the first byte, not after a whole frame or a timeout.
    if (this.phase === 'connect' && this.clientReader.bufferedBytes === 0 && chunk.length > 0 && chunk[0] !== T.CONNECT << 4) {
      return this.protocolError('client', new ProtocolError('the first packet must be CONNECT'))
    }
    // Everything this chunk produces leaves in one write per socket, not one syscall per packet.
    this.cork()
    try {
      this.guarded('client', () => {
        this.clientReader.push(chunk)
        this.drainClientFrames()
      })
    } finally {
      this.uncork()
    }
  }

  /** Runs one side's processing: whatever it throws is that side's protocol error, never the other's. */
  private guarded(side: Side, work: () => void): void {
    try {
      work()
    } catch (err) {
      this.protocolError(side, err as Error)
    }
  }

  private cork(): void {
    this.client.cork()
    this.upstream?.cork()
  }

  private uncork(): void {
    this.client.uncork()
    this.upstream?.uncork()
  }

  /** Processes buffered client frames; stops (leaving the rest buffered and unread) while CONNECT is being decided. */
  private drainClientFrames(): void {
    while (this.phase === 'connect' || this.phase === 'auth' || this.phase === 'open') {
      const frame = this.clientReader.read()
      if (!frame) return
      if (this.phase === 'open') this.fromClient(frame)
      else this.handshake!.onClientFrame(frame)
    }
    // Anything the client pipelined after CONNECT waits for its verification and the broker's CONNACK.
    if (this.phase === 'verifying' || this.phase === 'upstream') this.client.pause()
  }

  /** The session is open: what the client pipelined behind CONNECT is processed now, as the client's. */
  private releaseClient(): void {
    this.client.resume()
    this.drainClientFrames()
  }

  /**
   * A well-formed CONNECT from an address that is not banned: the broker connection (TCP, TLS) is opened now,
   * while the credential is verified, so the two overlap instead of adding up. Nothing is sent on it until
   * the client is admitted; a refused client's connection is destroyed unused. At most one per client socket,
   * so the limits on client connections bound these too.
   */
  private prepareUpstream(): void {
    if (this.upstreamOpening) return
    this.upstreamOpening = this.ctx.upstreams.open()
    this.upstreamOpening.then(
      ({ socket }) => {
        if (this.phase === 'closed') socket.destroy()
        else this.spareUpstream = socket
      },
      () => {}, // openUpstream tells the client, if it gets that far
    )
  }

  /** The handshake admitted the client: pick a broker and send it the CONNECT as the proxy presents it there. */
  private openUpstream(connect: ConnectPacket, address: string): void {
    // No broker could be reached: a server-side failure, Server unavailable (0x88; 3.1.1: return code 3).
    this.prepareUpstream()
    this.upstreamOpening!.then(
      ({ socket: upstream, upstream: broker }) => {
        this.spareUpstream = undefined
        this.upstreamOpening = undefined
        if (this.phase !== 'upstream') return upstream.destroy()
        this.broker = broker
        this.upstream = upstream
        upstream.setNoDelay(true)
        ;(upstream as SessionSocket)[SESSION] = this
        upstream.on('data', Session.upstreamData)
        upstream.on('error', Session.upstreamError)
        upstream.on('close', Session.upstreamClosed)
        upstream.write(encodePacket(upstreamConnectPacket(connect, address, this.version, { usernameFromAddress: this.ctx.usernameFromAddress, upstream: broker.options }), this.version))
        this.ctx.onUpstreamConnect?.(this)
      },
      () => {
        if (this.phase === 'upstream') this.close('broker-unavailable', { toClient: encodePacket(connackRefusal(this.version, ReasonCode.ServerUnavailable), this.version) })
      },
    )
  }

  /**
   * The broker connection ended without a DISCONNECT: the broker is probed, and the client is told so it
   * reconnects (to a healthy broker): before the CONNACK, Server unavailable (0x88); on an open v5 session,
   * DISCONNECT Server busy (0x89; 0x88 is not a DISCONNECT reason code, MQTT 5 §3.14.2.1); 3.1.1 is closed.
   */
  private brokerGone(): { toClient?: Buffer } {
    if (this.phase === 'closed') return {}
    if (this.broker) this.ctx.upstreams.lost(this.broker)
    if (this.phase === 'upstream') return { toClient: encodePacket(connackRefusal(this.version, ReasonCode.ServerUnavailable), this.version) }
    if (this.phase === 'open') return { toClient: this.version === 5 ? encodePacket(disconnectV5(ReasonCode.ServerBusy), 5) : FIN }
    return {}
  }

  // ------------------------------------------------------------------ broker → proxy

  private onUpstreamData(chunk: Buffer): void {
    if (this.phase === 'closed') return
    const wasOpen = this.phase === 'open'
    this.cork()
    try {
      this.guarded('broker', () => {
        for (const frame of this.upstreamReader.push(chunk)) {
          if (this.phase === 'upstream') this.handshake!.onConnack(frame)
          else if (this.phase === 'open') this.fromBroker(frame)
          else return
        }
      })
      // The CONNACK opened the session: the client's pipelined frames are processed outside the broker's guard.
      if (!wasOpen && this.phase === 'open') this.guarded('client', () => this.releaseClient())
    } finally {
      this.uncork()
    }
  }

  /** The broker accepted the CONNECT: the session is open. */
  private open(connack: Buffer, topicAliasMaximum: number): void {
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    this.enhancedAuth = this.handshake!.enhancedAuth
    this.handshake = undefined
    this.ctx.upstreams.accepted(this.broker!)
    if (topicAliasMaximum > 0) this.clientAliases = new TopicAliasTable(topicAliasMaximum, 'client-to-broker')
    this.phase = 'open'
    this.ctx.onOpen(this)
    this.toClient(connack)
  }

  private fromBroker(frame: Frame): void {
    switch (frame.type) {
      case T.PUBLISH:
        return this.deliver(frame)
      case T.SUBACK:
        return this.relaySuback(frame)
      case T.PUBREL: {
        const id = frame.bytes.readUInt16BE(frame.headerLength)
        if (this.droppedQos2FromBroker?.delete(id)) return this.toBroker(encodePacket(pubcompFor(this.version, id), this.version))
        return this.toClient(frame.bytes)
      }
      case T.CONNACK:
        throw new ProtocolError('second CONNACK from the broker')
      case T.DISCONNECT:
        return this.close('broker-disconnected', { toClient: frame.bytes })
      default:
        return this.toClient(frame.bytes)
    }
  }

  /** Defence in depth: every delivery is checked against the receiver's rights, now. */
  private deliver(frame: Frame): void {
    const publish = readPublishHeader(frame, this.version)
    const topic = NO_DELIVERY_ALIASES.resolve({ topic: publish.topic, properties: { topicAlias: publish.topicAlias } })
    const d = this.ctx.policy.canReceive(this.address!, topic, this.country)
    if (d.allowed) {
      if (d.sensitive) this.decision({ kind: 'deliver', allowed: true, reason: d.reason, topic, sensitive: true })
      else if (this.ctx.allDeliveries) this.decision({ kind: 'deliver', allowed: true, reason: d.reason, topic })
      return this.toClient(frame.bytes)
    }
    this.decision({ kind: 'deliver', allowed: false, reason: d.reason, topic, sensitive: d.sensitive })
    // Acknowledge what we drop, or the broker keeps it in flight and resends it forever.
    if (publish.qos === 1) this.toBroker(encodePacket(pubackFor(this.version, publish.messageId!), this.version))
    else if (publish.qos === 2) {
      ;(this.droppedQos2FromBroker ??= new Set()).add(publish.messageId!)
      this.toBroker(encodePacket(pubrecFor(this.version, publish.messageId!), this.version))
    }
  }

  private relaySuback(frame: Frame): void {
    const id = frame.bytes.readUInt16BE(frame.headerLength)
    const merge = this.pendingSubacks?.get(id)
    if (!merge) return this.toClient(frame.bytes)
    this.pendingSubacks!.delete(id)
    const suback = decodePacket(frame.bytes, this.version) as SubackPacket
    const fromBroker = [...suback.granted]
    const codes = merge.map((c) => (c === null ? (fromBroker.shift() ?? this.refusedCode()) : c))
    this.toClient(encodePacket({ ...suback, granted: codes }, this.version))
  }

  // ------------------------------------------------------------------ client → broker, open session

  private fromClient(frame: Frame): void {
    const flags = CLIENT_FLAGS[frame.type]
    if (flags !== undefined && frame.flags !== flags) throw new MalformedPacketError(`packet type ${frame.type} with reserved flags ${frame.flags}`)
    switch (frame.type) {
      case T.PUBLISH:
        return this.publish(frame)
      case T.SUBSCRIBE:
        return this.subscribe(frame)
      case T.PUBREL: {
        const id = frame.bytes.readUInt16BE(frame.headerLength)
        if (this.refusedQos2FromClient?.delete(id)) return this.toClient(encodePacket(pubcompFor(this.version, id), this.version))
        return this.toBroker(frame.bytes)
      }
      case T.DISCONNECT: {
        // DISCONNECT 0x04 asks the broker to publish the will: only if it is still allowed now (grants expire).
        const withWill = this.version === 5 && frame.remainingLength > 0 && frame.bytes[frame.headerLength] === ReasonCode.DisconnectWithWillMessage
        if (withWill && this.live.willRefusedAtDisconnect()) return this.close('client-disconnected', { toBroker: normalDisconnect(5) })
        return this.close('client-disconnected', { toBroker: frame.bytes })
      }
      case T.CONNECT:
        throw new ProtocolError('second CONNECT')
      case T.AUTH:
        // Without enhanced authentication AUTH is a protocol error (MQTT 5 §3.15); with it, re-authentication is
        // not offered. Either way the broker must never see our authentication method.
        if (!this.enhancedAuth) throw new ProtocolError('AUTH without enhanced authentication')
        throw new ProtocolError('re-authentication is not supported', ReasonCode.BadAuthenticationMethod)
      case 0:
      case T.CONNACK:
      case T.SUBACK:
      case T.UNSUBACK:
      case T.PINGRESP:
        throw new ProtocolError(`packet type ${frame.type} is not sent by clients`)
      default:
        return this.toBroker(frame.bytes)
    }
  }

  private publish(frame: Frame): void {
    const publish = readPublishHeader(frame, this.version)
    const topic = this.clientAliases.resolve({ topic: publish.topic, properties: { topicAlias: publish.topicAlias } })
    const invalid = validateTopicName(topic)
    if (invalid) throw new ProtocolError(`PUBLISH topic: ${invalid}`, ReasonCode.TopicNameInvalid)
    const d = this.ctx.policy.canPublish(this.address!, topic, this.country)
    this.decision({ kind: 'publish', allowed: d.allowed, reason: d.reason, topic, sensitive: d.sensitive })
    if (!d.allowed) {
      this.ctx.recordFailure(this.ip, this.address)
      if (publish.qos === 1) this.toClient(encodePacket(pubackFor(this.version, publish.messageId!, ReasonCode.NotAuthorized), this.version))
      else if (publish.qos === 2) {
        if (this.version === 4) (this.refusedQos2FromClient ??= new Set()).add(publish.messageId!) // 3.1.1 will still send PUBREL
        this.toClient(encodePacket(pubrecFor(this.version, publish.messageId!, ReasonCode.NotAuthorized), this.version))
      }
      return
    }
    const alias = publish.topicAlias
    if (alias === undefined) return this.toBroker(frame.bytes)
    const seen = (this.brokerSeenAliases ??= new Map())
    if (publish.topic !== '') {
      seen.set(alias, topic)
      return this.toBroker(frame.bytes)
    }
    // The broker may hold an older binding for this alias (the rebinding packet was refused): name the topic.
    if (seen.get(alias) === topic) return this.toBroker(frame.bytes)
    seen.set(alias, topic)
    const full = decodePacket(frame.bytes, this.version) as PublishPacket
    this.toBroker(encodePacket({ ...full, topic }, this.version))
  }

  private subscribe(frame: Frame): void {
    const sub = decodePacket(frame.bytes, this.version) as SubscribePacket
    const codes: (number | null)[] = []
    const kept: SubscribePacket['subscriptions'] = []
    for (const s of sub.subscriptions) {
      const code = this.subscriptionRefusal(s.topic)
      codes.push(code)
      if (code === null) kept.push(s)
    }
    if (kept.length === sub.subscriptions.length) return this.toBroker(frame.bytes)
    this.ctx.recordFailure(this.ip, this.address)
    const id = sub.messageId!
    if (kept.length === 0) return this.toClient(encodePacket(subackFor(this.version, id, codes as number[]), this.version))
    ;(this.pendingSubacks ??= new Map()).set(id, codes)
    this.toBroker(encodePacket({ ...sub, subscriptions: kept }, this.version))
  }

  /** null when the filter may be subscribed, else the SUBACK code to answer with. */
  private subscriptionRefusal(raw: string): number | null {
    const shared = parseShared(raw)
    const filter = shared?.filter
    const invalid = filter === undefined ? 'malformed $share filter' : validateTopicFilter(filter)
    if (invalid || filter === undefined) {
      this.decision({ kind: 'subscribe', allowed: false, reason: 'invalid', topic: raw, detail: invalid ?? undefined })
      return this.version === 5 ? ReasonCode.TopicFilterInvalid : SUBACK_FAILURE_V4
    }
    const d = this.ctx.policy.canSubscribe(this.address!, filter, this.country)
    this.decision({ kind: 'subscribe', allowed: d.allowed, reason: d.reason, topic: raw, sensitive: d.sensitive })
    return d.allowed ? null : this.refusedCode()
  }

  private refusedCode(): number {
    return this.version === 5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_V4
  }

  // ------------------------------------------------------------------ policy changes on a live session (live-checks.ts)

  /** Called when the policy changed: a will that is no longer allowed ends the session (discarded upstream). */
  recheck(): void {
    if (this.will) this.live.recheck()
  }

  /** Ends the session from the proxy side: DISCONNECT with a reason to a v5 client, will discarded upstream. */
  kick(reasonCode: number, why: string): void {
    this.live.kick(reasonCode, why)
  }

  // ------------------------------------------------------------------ plumbing

  private decision(e: DecisionInput): void {
    const durable = this.ctx.onDecision({ ip: this.ip, address: this.address, clientId: this.clientId, ...e })
    if (!durable) return
    // A refused delivery acknowledges nothing to the client: nothing waits for it.
    if (e.kind === 'deliver' && !e.allowed) durable.catch(() => {})
    else this.hold(durable)
  }

  /** Everything sent to the client after this point waits until `durable` resolves (the decision is in the journal). */
  private hold(durable: Promise<unknown>): void {
    const mark = { durable: false }
    this.held.push(mark)
    if (this.held.length > MAX_HELD) return this.journalFailed('journal-stalled')
    durable.then(
      () => {
        mark.durable = true
        this.release()
      },
      () => this.journalFailed('journal-unavailable'),
    )
  }

  /** Sends what no longer waits, in order. */
  private release(): void {
    this.client.cork()
    try {
      while (this.held.length > 0) {
        const next = this.held[0]!
        if (Buffer.isBuffer(next)) {
          if (this.phase !== 'closed') this.write(this.client, next, this.upstream)
          else if (!this.client.destroyed && !this.client.writableEnded) this.client.write(next) // the session ended after deciding: its acks still go
        } else if (typeof next === 'function') next()
        else if (!next.durable) break
        this.held.shift()
      }
    } finally {
      this.client.uncork()
    }
  }

  /** A decision could not be made durable: nothing after it may be acknowledged. The client may retry. */
  private journalFailed(why: string): void {
    this.held = []
    if (!this.client.destroyed) this.client.destroy()
    this.close(why)
  }

  /** Ends the session for a protocol error of `where`: logged and counted against that side, answered to the client. */
  private protocolError(where: Side, err: Error): void {
    if (this.phase === 'closed') return
    this.ctx.onProtocolError(this, where, err)
    if (where === 'client') this.ctx.recordFailure(this.ip, this.address)
    this.close(`${where}-protocol-error`, { toClient: this.errorNotice(where, err) })
  }

  /**
   * What the client is told when a protocol error ends its session. Open: a v5 DISCONNECT with the client's own
   * error code (0x83 when the broker failed), a bare FIN for 3.1.1. Before the CONNACK: a v5 CONNACK with the
   * client's code once its CONNECT was read; a FIN when it never sent a valid one; nothing for a broker failure.
   */
  private errorNotice(where: Side, err: Error): Buffer | undefined {
    const code = err instanceof MqttProtocolError ? err.reasonCode : ReasonCode.UnspecifiedError
    if (this.phase === 'open') return this.version === 5 ? encodePacket(disconnectV5(where === 'client' ? code : ReasonCode.ImplementationSpecificError), 5) : FIN
    if (where === 'broker') return undefined
    if (this.handshake?.connect === undefined || this.version !== 5) return FIN
    return encodePacket(connackRefusal(5, code), 5)
  }

  private toClient(bytes: Buffer): void {
    if (this.held.length > 0) {
      this.held.push(bytes)
      if (this.held.length > MAX_HELD) this.journalFailed('journal-stalled')
    } else this.write(this.client, bytes, this.upstream)
  }

  private toBroker(bytes: Buffer): void {
    if (this.upstream) this.write(this.upstream, bytes, this.client)
  }

  /** Back-pressure: a full destination pauses the source until it drains, or ends both after a timeout. */
  private write(dest: Socket, bytes: Buffer, source: Socket | undefined): void {
    if (dest.destroyed || this.phase === 'closed') return
    if (dest.write(bytes) || !source) return
    const timers = (this.drainTimers ??= new Map())
    if (timers.has(dest)) return
    source.pause()
    const timer = setTimeout(() => this.close('drain-timeout'), this.ctx.drainTimeoutMs)
    timers.set(dest, timer)
    dest.once('drain', () => {
      clearTimeout(timer)
      timers.delete(dest)
      if (this.phase === 'open' || source === this.upstream) source.resume()
    })
  }

  /**
   * The one teardown, idempotent. `toClient` / `toBroker` is the last packet for that side (FIN for none but an
   * orderly end): it is flushed, then the socket lingers for the peer's close. A side without one is destroyed.
   */
  close(why: string, last: { toClient?: Buffer; toBroker?: Buffer } = {}): void {
    if (this.phase === 'closed') return
    const wasOpen = this.phase === 'open'
    this.phase = 'closed'
    clearTimeout(this.connectTimer)
    if (this.drainTimers) for (const t of this.drainTimers.values()) clearTimeout(t)
    this.spareUpstream?.destroy()
    if (this.upstream) {
      let toBroker = last.toBroker
      // An abrupt client loss makes the broker publish the will; re-check it is still allowed first.
      if (!toBroker && wasOpen && this.will) toBroker = this.live.discardRevokedWill(why)
      if (!toBroker && why === 'shutdown') toBroker = FIN
      endSocket(this.upstream, toBroker)
    }
    if (this.held.length === 0) endSocket(this.client, last.toClient)
    else {
      // Acknowledgements still held for the journal go out first (release()), then the last packet; a journal
      // that does not answer within LINGER_MS gets the socket destroyed, unacknowledged.
      let ended = false
      const end = (): void => {
        if (ended) return
        ended = true
        endSocket(this.client, last.toClient ?? FIN)
      }
      this.held.push(end)
      setTimeout(() => {
        if (ended) return
        ended = true
        this.client.destroy()
      }, LINGER_MS).unref()
    }
    this.closeReason = why
    this.ctx.onClose(this)
  }

  /** Graceful shutdown: tell v5 clients the server is going away, then close both sides. */
  shutdown(): void {
    const toClient = this.phase !== 'open' ? undefined : this.version === 5 ? encodePacket(disconnectV5(ReasonCode.ServerShuttingDown), 5) : FIN
    this.close('shutdown', { toClient })
  }
}
