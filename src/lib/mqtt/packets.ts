/**
 * The one packet library: typed decode/encode of MQTT 3.1.1 (protocol version 4) and MQTT 5 packets on top
 * of mqtt-packet, plus the packets the proxy builds itself (refusals, acknowledgements, the CONNECT it
 * sends upstream).
 *
 * mqtt-packet is lenient in ways that matter at a security boundary; decodePacket closes those gaps
 * (see the "Checks mqtt-packet does not do" section below) so that what the proxy authorises is exactly what
 * the broker will read from the same bytes.
 *
 * mqtt-packet quirks callers see in the decoded objects:
 * - User properties are an object keyed by name (prototype-less, so `__proto__` is an ordinary key); a name
 *   that occurs once maps to a string, a repeated name to an array of strings in wire order. The relative
 *   order of different names is lost (a=1,b=2,a=3 re-encodes as a=1,a=3,b=2). Use userPropertyValues().
 * - A PUBLISH that relies on a Topic Alias has `topic: ''` and `properties.topicAlias`; the topic must be
 *   resolved through aliases.ts before any decision (never authorise the empty string).
 * - "Byte" properties (payloadFormatIndicator, requestProblemInformation, ...) decode as booleans, so an
 *   out-of-range value such as 2 reads as true and re-encodes as 1.
 * - Strings are decoded with replacement characters, never rejected, so invalid UTF-8 would look valid;
 *   decodePacket rejects it (see below).
 * - Encoding: a password without a username is refused even in MQTT 5 (where it is legal); an MQTT 5
 *   PUBACK/PUBREC/PUBREL/PUBCOMP/DISCONNECT is always written in its long form (reason code + property
 *   length), which is valid but not byte-identical to short-form input.
 */
import { generate, parser as createParser } from 'mqtt-packet'
import type * as mp from 'mqtt-packet'
import { readFixedHeader, readVariableByteInteger } from './framing.js'
import {
  ConnackReturnCode,
  type ConnackReturnCodeValue,
  MalformedPacketError,
  ProtocolError,
  ReasonCode,
  SUBACK_FAILURE_V4,
} from './reason-codes.js'

/** 4 = MQTT 3.1.1, 5 = MQTT 5. (A 3.1 CONNECT decodes with protocolVersion 3 so the proxy can refuse it.) */
export type ProtocolVersion = 4 | 5
export type QoS = mp.QoS
export type UserProperties = mp.UserProperties

/** `bridgeMode` is mosquitto's bridge flag (protocol version byte with bit 7 set); mqtt-packet keeps it. */
export type ConnectPacket = mp.IConnectPacket & { bridgeMode?: boolean }
export type Will = NonNullable<ConnectPacket['will']>
export type ConnackPacket = mp.IConnackPacket
export type PublishPacket = mp.IPublishPacket
export type PubackPacket = mp.IPubackPacket
export type PubrecPacket = mp.IPubrecPacket
export type PubrelPacket = mp.IPubrelPacket
export type PubcompPacket = mp.IPubcompPacket
export type Subscription = mp.ISubscription
export type SubscribePacket = mp.ISubscribePacket
/** mqtt-packet types `granted` as `number[] | Object[]`; on the wire it is always one code per filter. */
export type SubackPacket = Omit<mp.ISubackPacket, 'granted'> & { granted: number[] }
export type UnsubscribePacket = mp.IUnsubscribePacket
/** mqtt-packet requires `granted`, but a 3.1.1 UNSUBACK has no reason codes. */
export type UnsubackPacket = Omit<mp.IUnsubackPacket, 'granted'> & { granted?: number[] }
export type PingreqPacket = mp.IPingreqPacket
export type PingrespPacket = mp.IPingrespPacket
export type DisconnectPacket = mp.IDisconnectPacket
export type AuthPacket = mp.IAuthPacket

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket

/** User properties with this prefix (case-insensitive) carry FlyTrap credentials and never go upstream. */
export const CREDENTIAL_PROPERTY_PREFIX = 'flytrap-'

// ---------------------------------------------------------------------------------------------------------
// Decoding

/** What we rely on inside mqtt-packet's parser; none of it is in its type declarations. */
interface ParserInternals extends mp.Parser {
  /** Consulted for the protocol version of every non-CONNECT packet; the parser overwrites it on CONNECT. */
  settings: { protocolVersion: number }
  /** Body offset where parsing stopped; still valid while the 'packet' event is emitted. */
  _pos: number
}

interface ParserSlot {
  parser: ParserInternals
  packet: Record<string, unknown> | undefined
  consumed: number
  error: Error | undefined
}

// One parser per protocol version, reused: parse() is synchronous and we feed it exactly one frame.
const slots = new Map<ProtocolVersion, ParserSlot>()

function slotFor(version: ProtocolVersion): ParserSlot {
  let slot = slots.get(version)
  if (slot === undefined) {
    const parser = createParser({ protocolVersion: version }) as ParserInternals
    const created: ParserSlot = { parser, packet: undefined, consumed: 0, error: undefined }
    parser.on('packet', (packet: mp.Packet) => {
      created.packet = packet as unknown as Record<string, unknown>
      created.consumed = parser._pos
    })
    parser.on('error', (err: Error) => {
      created.error ??= err
    })
    slots.set(version, created)
    slot = created
  }
  return slot
}

// mqtt-packet's objects carry topic/payload/qos/dup/retain/length on every packet type; decoded packets keep
// only the fields of their own type, so they compare and re-encode cleanly.
const RETURN_FIELDS: Record<string, readonly string[]> = {
  connect: ['protocolId', 'protocolVersion', 'bridgeMode', 'clean', 'keepalive', 'clientId', 'will', 'username', 'password', 'properties'],
  connack: ['sessionPresent', 'returnCode', 'reasonCode', 'properties'],
  publish: ['topic', 'payload', 'qos', 'dup', 'retain', 'messageId', 'properties'],
  puback: ['messageId', 'reasonCode', 'properties'],
  pubrec: ['messageId', 'reasonCode', 'properties'],
  pubrel: ['messageId', 'reasonCode', 'properties'],
  pubcomp: ['messageId', 'reasonCode', 'properties'],
  subscribe: ['messageId', 'subscriptions', 'properties'],
  suback: ['messageId', 'granted', 'properties'],
  unsubscribe: ['messageId', 'unsubscriptions', 'properties'],
  unsuback: ['messageId', 'granted', 'properties'],
  pingreq: [],
  pingresp: [],
  disconnect: ['reasonCode', 'properties'],
  auth: ['reasonCode', 'properties'],
}

/**
 * Decodes exactly one complete packet (a Frame's bytes). `version` is the connection's protocol version,
 * taken from its CONNECT; a CONNECT itself carries its version, so any value works for the first packet.
 *
 * Throws MalformedPacketError (0x81), or ProtocolError with 0x82, or 0x84 for a CONNECT whose protocol
 * version is not 3, 4 or 5 (answer that with connackRefusal(4, 0x84): the client may not speak MQTT 5).
 */
export function decodePacket(bytes: Buffer, version: ProtocolVersion): Packet {
  const header = readFixedHeader(bytes)
  if (header === null || header.headerLength + header.remainingLength !== bytes.length) {
    throw new MalformedPacketError('bytes are not exactly one complete packet')
  }
  // mqtt-packet rejects an AUTH with remaining length 0, which MQTT 5 §3.15.2.1 defines as Success.
  if (header.type === 15 && header.remainingLength === 0 && version === 5) {
    return { cmd: 'auth', reasonCode: ReasonCode.Success }
  }

  const slot = slotFor(version)
  slot.packet = undefined
  slot.error = undefined
  slot.consumed = 0
  // The parser replaces its settings with the last CONNECT it saw; pin them to this connection's version.
  slot.parser.settings = { protocolVersion: version }
  let left: number
  try {
    left = slot.parser.parse(bytes)
  } catch (err) {
    slots.delete(version) // a throw leaves the parser in an unknown state
    throw new MalformedPacketError(`undecodable packet: ${(err as Error).message}`, { cause: err })
  }
  // Read back through the declared type: TypeScript cannot see that parse() set these via the listeners.
  const { packet: raw, error, consumed } = slot as ParserSlot
  if (error !== undefined) {
    // After an error mqtt-packet resets its buffer but not its read offset (_pos), so the next packet would
    // be read at the wrong position: never reuse a parser that failed.
    slots.delete(version)
    if (error.message === 'Invalid protocol version') {
      throw new ProtocolError('unsupported protocol version', ReasonCode.UnsupportedProtocolVersion, { cause: error })
    }
    throw new MalformedPacketError(error.message, { cause: error })
  }
  if (raw === undefined || left !== 0) {
    slots.delete(version)
    throw new MalformedPacketError('packet was not fully decoded')
  }

  const cmd = raw.cmd as string
  const fields = RETURN_FIELDS[cmd] as readonly string[]
  const packet: Record<string, unknown> = { cmd }
  for (const field of fields) {
    if (raw[field] !== undefined) packet[field] = raw[field]
  }
  const connectVersion = cmd === 'connect' ? (packet.protocolVersion as number) : version
  checkDecoded(packet, bytes, header.headerLength, header.remainingLength, consumed, connectVersion)
  return packet as unknown as Packet
}

// ---------------------------------------------------------------------------------------------------------
// Checks mqtt-packet does not do

const NEEDS_MESSAGE_ID = new Set(['puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback'])
/** Properties MQTT 5 allows more than once (§2.2.2.2); any other repeat is a Protocol Error. */
const REPEATABLE = new Set(['userProperties', 'subscriptionIdentifier'])

function checkDecoded(
  packet: Record<string, unknown>,
  bytes: Buffer,
  headerLength: number,
  remainingLength: number,
  consumed: number,
  version: number,
): void {
  const cmd = packet.cmd as string

  // Trailing bytes: mqtt-packet stops reading when it has what it wants. Only PUBLISH has an open-ended
  // payload; there we check instead that the property section ends where its length says, because a
  // property straddling that boundary would shift where the broker and the proxy think the payload starts.
  if (cmd === 'publish') {
    if (version === 5) {
      // Body offset of the property length: topic (2 + n bytes), then the packet identifier when QoS > 0.
      let pos = 2 + bytes.readUInt16BE(headerLength)
      if (packet.qos !== 0) pos += 2
      const propertyLength = readVariableByteInteger(bytes, headerLength + pos)
      if (propertyLength === null || pos + propertyLength.length + propertyLength.value !== consumed) {
        throw new MalformedPacketError('PUBLISH property length does not match its properties')
      }
    }
  } else if (consumed !== remainingLength) {
    throw new MalformedPacketError(`${cmd} has ${remainingLength - consumed} unexpected trailing bytes`)
  }

  // mqtt-packet returns -1 for a packet identifier it could not read, and accepts 0.
  if (NEEDS_MESSAGE_ID.has(cmd) || (cmd === 'publish' && packet.qos !== 0)) {
    const id = packet.messageId
    if (typeof id !== 'number' || id < 1 || id > 0xffff) {
      throw new ProtocolError(`${cmd} has an invalid packet identifier`)
    }
  }
  // mqtt-packet accepts a SUBSCRIBE/UNSUBSCRIBE with no filters (a Protocol Error, §3.8.3 / §3.10.3).
  const list = cmd === 'subscribe' ? packet.subscriptions : cmd === 'unsubscribe' ? packet.unsubscriptions : cmd === 'suback' ? packet.granted : undefined
  if (Array.isArray(list) && list.length === 0) throw new ProtocolError(`${cmd} has an empty payload`)
  if (cmd === 'connack') {
    const code = version === 5 ? packet.reasonCode : packet.returnCode
    if (typeof code !== 'number') throw new MalformedPacketError('CONNACK without a return code')
  }

  checkProperties(packet.properties, cmd)
  const will = packet.will as Will | undefined
  if (will !== undefined) checkProperties(will.properties, 'will')

  // Strings: U+0000 is forbidden (§1.5.4). U+FFFD may be a real character or mqtt-packet's replacement for
  // invalid UTF-8 that the broker would read differently; accept it only if re-encoding reproduces the
  // exact bytes, which proves every string was valid UTF-8. (Cost: a genuine U+FFFD in a packet that is
  // valid but not in mqtt-packet's canonical encoding is refused too; rare enough to accept.)
  const suspect = scanStrings(packet)
  if (suspect === 'nul') throw new MalformedPacketError(`${cmd} contains U+0000 in a string`)
  if (suspect === 'replacement') {
    let reencoded: Buffer | undefined
    try {
      reencoded = encodePacket(packet as unknown as Packet, version === 5 ? 5 : 4)
    } catch {
      reencoded = undefined
    }
    if (reencoded === undefined || !reencoded.equals(bytes)) {
      throw new MalformedPacketError(`${cmd} contains a string that is not valid UTF-8`)
    }
  }
}

/** Rejects repeated single-valued properties and values mqtt-packet could not read (null, -1, false). */
function checkProperties(properties: unknown, cmd: string): void {
  if (properties === undefined) return
  if (properties === null || typeof properties !== 'object') throw new MalformedPacketError(`${cmd} has unreadable properties`)
  for (const [name, value] of Object.entries(properties)) {
    if (name === 'userProperties') {
      for (const v of Object.values(value as Record<string, unknown>)) {
        const values = Array.isArray(v) ? v : [v]
        if (!values.every((x) => typeof x === 'string')) throw new MalformedPacketError(`${cmd} has an unreadable user property`)
      }
      continue
    }
    if (Array.isArray(value) && !(REPEATABLE.has(name) && cmd === 'publish')) {
      throw new ProtocolError(`${cmd} repeats the ${name} property`)
    }
    const values: unknown[] = Array.isArray(value) ? value : [value]
    for (const v of values) {
      if (v === null || v === undefined || v === -1 || (v === false && name === 'subscriptionIdentifier')) {
        throw new MalformedPacketError(`${cmd} has an unreadable ${name} property`)
      }
    }
  }
}

function scanStrings(value: unknown): 'nul' | 'replacement' | null {
  let found: 'nul' | 'replacement' | null = null
  const visit = (s: string): boolean => {
    if (s.includes('\u0000')) {
      found = 'nul'
      return true
    }
    if (s.includes('\uFFFD')) found = 'replacement'
    return false
  }
  const walk = (v: unknown): boolean => {
    if (typeof v === 'string') return visit(v)
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return false
    if (Array.isArray(v)) return v.some(walk)
    for (const [k, x] of Object.entries(v)) {
      if (visit(k) || walk(x)) return true
    }
    return false
  }
  walk(value)
  return found
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a packet. For CONNECT the packet's own protocolVersion wins (`version` fills it in when absent).
 * Throws TypeError for a packet mqtt-packet cannot encode; several of its failure modes are silent (QoS 3
 * truncates the output, a packet identifier above 65535 writes garbage), so those are checked first.
 */
export function encodePacket(packet: Packet, version: ProtocolVersion): Buffer {
  assertEncodable(packet)
  const input: Packet = packet.cmd === 'connect' && packet.protocolVersion === undefined ? { ...packet, protocolVersion: version } : packet
  try {
    return generate(input as mp.Packet, { protocolVersion: version })
  } catch (err) {
    throw new TypeError(`cannot encode ${packet.cmd}: ${(err as Error).message}`, { cause: err })
  }
}

function assertEncodable(packet: Packet): void {
  const p = packet as Packet & { messageId?: number; qos?: number; reasonCode?: number; granted?: unknown[] }
  const fail = (what: string): never => {
    throw new TypeError(`cannot encode ${packet.cmd}: ${what}`)
  }
  const isByte = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xff
  if (p.cmd === 'publish' && (p.qos === undefined || ![0, 1, 2].includes(p.qos))) fail('QoS must be 0, 1 or 2')
  const needsId = NEEDS_MESSAGE_ID.has(p.cmd) || (p.cmd === 'publish' && p.qos !== 0)
  if (needsId && !(Number.isInteger(p.messageId) && (p.messageId as number) >= 1 && (p.messageId as number) <= 0xffff)) {
    fail('packet identifier must be in 1..65535')
  }
  if (p.reasonCode !== undefined && !isByte(p.reasonCode)) fail('reason code must be a byte')
  if (Array.isArray(p.granted) && !p.granted.every(isByte)) fail('SUBACK/UNSUBACK codes must be bytes')
  if (p.cmd === 'subscribe' && !p.subscriptions.every((s) => [0, 1, 2].includes(s.qos))) fail('subscription QoS must be 0, 1 or 2')
  if (p.cmd === 'connect' && p.will?.qos !== undefined && ![0, 1, 2].includes(p.will.qos)) fail('will QoS must be 0, 1 or 2')
}

// ---------------------------------------------------------------------------------------------------------
// User properties and credentials

/** All values of one user property as an array, whatever shape mqtt-packet gave it. */
export function userPropertyValues(userProperties: UserProperties | undefined, name: string): string[] {
  if (userProperties === undefined || !Object.hasOwn(userProperties, name)) return []
  const value = userProperties[name]
  return Array.isArray(value) ? [...value] : value === undefined ? [] : [value]
}

/**
 * A copy of `packet` whose user properties no longer include those `predicate` selects. Drops the
 * userProperties (and properties) key when nothing is left, so the encoder writes no empty section.
 */
export function withoutUserProperties<P extends { properties?: { userProperties?: UserProperties } }>(
  packet: P,
  predicate: (name: string, value: string) => boolean,
): P {
  const source = packet.properties?.userProperties
  if (source === undefined) return { ...packet }
  // Prototype-less, like mqtt-packet's own object: a property named "__proto__" must stay plain data.
  const kept: UserProperties = Object.create(null) as UserProperties
  let count = 0
  for (const name of Object.keys(source)) {
    const values = userPropertyValues(source, name).filter((v) => !predicate(name, v))
    if (values.length === 0) continue
    kept[name] = values.length === 1 ? (values[0] as string) : values
    count++
  }
  const properties: Record<string, unknown> = { ...packet.properties }
  if (count > 0) properties.userProperties = kept
  else delete properties.userProperties
  const copy: P = { ...packet }
  if (Object.keys(properties).length > 0) copy.properties = properties as P['properties']
  else delete copy.properties
  return copy
}

/** True for user properties that carry FlyTrap credentials (`flytrap-*`, any case). */
export function isCredentialProperty(name: string): boolean {
  return name.toLowerCase().startsWith(CREDENTIAL_PROPERTY_PREFIX)
}

/**
 * The CONNECT to send upstream: without username/password, without the authentication method/data (the
 * proxy, not the broker, runs enhanced authentication) and without `flytrap-*` user properties.
 * `upstream` optionally supplies the credentials the broker itself expects. The will is kept as is: it was
 * authorised like a PUBLISH before we got here. Always forward this re-encoded copy, never the original bytes.
 */
export function stripCredentials(connect: ConnectPacket, upstream: { username?: string; password?: Buffer } = {}): ConnectPacket {
  const { username: _username, password: _password, properties, ...rest } = connect
  let out: ConnectPacket = { ...rest }
  if (properties !== undefined) {
    const { authenticationMethod: _method, authenticationData: _data, ...others } = properties
    out = withoutUserProperties({ ...out, properties: others }, isCredentialProperty)
  }
  if (upstream.username !== undefined) out.username = upstream.username
  if (upstream.password !== undefined) out.password = upstream.password
  return out
}

// ---------------------------------------------------------------------------------------------------------
// Packets the proxy produces

/**
 * Nearest 3.1.1 return code for an MQTT 5 CONNACK reason code. 3.1.1 can only say: bad protocol (1),
 * identifier rejected (2), server unavailable (3), bad credentials (4), not authorised (5); anything without
 * a closer meaning becomes 3, which tells the client nothing about its credentials.
 */
export function connackReturnCodeFor(reasonCodeV5: number): ConnackReturnCodeValue {
  switch (reasonCodeV5) {
    case ReasonCode.Success:
      return ConnackReturnCode.Accepted
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnackReturnCode.UnacceptableProtocolVersion
    case ReasonCode.ClientIdentifierNotValid:
      return ConnackReturnCode.IdentifierRejected
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod:
      return ConnackReturnCode.BadUserNameOrPassword
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
      return ConnackReturnCode.NotAuthorized
    default:
      return ConnackReturnCode.ServerUnavailable
  }
}

/** A CONNACK that refuses the connection; `reasonCodeV5` must be a failure code (≥ 0x80). */
export function connackRefusal(version: ProtocolVersion, reasonCodeV5: number, properties?: ConnackPacket['properties']): ConnackPacket {
  if (!Number.isInteger(reasonCodeV5) || reasonCodeV5 < 0x80 || reasonCodeV5 > 0xff) {
    throw new RangeError(`a CONNACK refusal needs a failure reason code (0x80..0xFF), got ${reasonCodeV5}`)
  }
  if (version === 5) {
    return properties === undefined
      ? { cmd: 'connack', sessionPresent: false, reasonCode: reasonCodeV5 }
      : { cmd: 'connack', sessionPresent: false, reasonCode: reasonCodeV5, properties }
  }
  // Session present must be 0 with a non-zero return code (3.1.1 §3.2.2.2).
  return { cmd: 'connack', sessionPresent: false, returnCode: connackReturnCodeFor(reasonCodeV5) }
}

/**
 * PUBACK for a client's QoS 1 PUBLISH. 3.1.1 has no reason codes: a refused publish is still acknowledged
 * (and dropped), which is all the protocol allows.
 */
export function pubackFor(version: ProtocolVersion, messageId: number, reasonCode: number = ReasonCode.Success): PubackPacket {
  return version === 5 ? { cmd: 'puback', messageId, reasonCode } : { cmd: 'puback', messageId }
}

/** PUBREC for a QoS 2 PUBLISH. In MQTT 5 a failure code (≥ 0x80) ends the exchange; in 3.1.1 a PUBREL follows. */
export function pubrecFor(version: ProtocolVersion, messageId: number, reasonCode: number = ReasonCode.Success): PubrecPacket {
  return version === 5 ? { cmd: 'pubrec', messageId, reasonCode } : { cmd: 'pubrec', messageId }
}

/** PUBCOMP answering a PUBREL (completes a QoS 2 exchange the proxy terminated itself). */
export function pubcompFor(version: ProtocolVersion, messageId: number, reasonCode: number = ReasonCode.Success): PubcompPacket {
  return version === 5 ? { cmd: 'pubcomp', messageId, reasonCode } : { cmd: 'pubcomp', messageId }
}

/** SUBACK with one code per filter; in 3.1.1 every failure code becomes 0x80, the only one it has. */
export function subackFor(version: ProtocolVersion, messageId: number, codes: readonly number[]): SubackPacket {
  const granted = version === 5 ? [...codes] : codes.map((c) => (c <= 2 ? c : SUBACK_FAILURE_V4))
  return { cmd: 'suback', messageId, granted }
}

/** MQTT 5 DISCONNECT (3.1.1 has no server DISCONNECT: there the proxy just closes the socket). */
export function disconnectV5(reasonCode: number, reasonString?: string): DisconnectPacket {
  return reasonString === undefined
    ? { cmd: 'disconnect', reasonCode }
    : { cmd: 'disconnect', reasonCode, properties: { reasonString } }
}
