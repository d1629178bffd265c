import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  connackRefusal,
  connackReturnCodeFor,
  type ConnectPacket,
  decodePacket,
  disconnectV5,
  encodePacket,
  isCredentialProperty,
  type Packet,
  type ProtocolVersion,
  pubackFor,
  pubcompFor,
  pubrecFor,
  stripCredentials,
  subackFor,
  type UserProperties,
  userPropertyValues,
  withoutUserProperties,
} from '../../../src/lib/mqtt/packets.js'
import { MalformedPacketError, MqttProtocolError, ProtocolError, ReasonCode } from '../../../src/lib/mqtt/reason-codes.js'

// Field helpers for fixtures: each returns the wire bytes of one field.
const u16 = (n: number): number[] => [n >> 8, n & 0xff]
const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
/** UTF-8 string with its 2-byte length prefix. */
const str = (s: string): number[] => {
  const b = Buffer.from(s, 'utf8')
  return [...u16(b.length), ...b]
}
const buf = (s: string): Buffer => Buffer.from(s, 'utf8')
/** mqtt-packet builds user properties on a prototype-less object; deepStrictEqual compares prototypes. */
const up = (o: Record<string, string | string[]>): UserProperties => Object.assign(Object.create(null) as UserProperties, o)

interface Fixture {
  name: string
  version: ProtocolVersion
  bytes: number[]
  packet: Packet
  /** What encodePacket writes when it differs from the (valid) input form. */
  encoded?: number[]
}

const fixtures: Fixture[] = [
  // ---------------------------------------------------------------- MQTT 3.1.1
  {
    name: 'v4 CONNECT, minimal',
    version: 4,
    bytes: [
      0x10, 14, // CONNECT, remaining length 14
      ...str('MQTT'), // protocol name
      0x04, // protocol level 4 (3.1.1)
      0x02, // connect flags: clean session
      ...u16(60), // keep alive 60 s
      ...str('c1'), // client identifier
    ],
    packet: { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'c1' },
  },
  {
    name: 'v4 CONNECT with will, username and password',
    version: 4,
    bytes: [
      0x10, 34, // CONNECT, remaining length 34
      ...str('MQTT'), // protocol name
      0x04, // protocol level 4
      0xee, // flags: username 0x80, password 0x40, will retain 0x20, will QoS 1 0x08, will 0x04, clean 0x02
      ...u16(30), // keep alive 30 s
      ...str('dev-1'), // client identifier
      ...str('w/t'), // will topic
      ...str('bye'), // will payload
      ...str('u'), // username
      ...str('pw'), // password
    ],
    packet: {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      clientId: 'dev-1',
      will: { topic: 'w/t', payload: buf('bye'), qos: 1, retain: true },
      username: 'u',
      password: buf('pw'),
    },
  },
  {
    name: 'v4 CONNACK accepted, session present',
    version: 4,
    bytes: [0x20, 0x02, /* CONNACK, length 2 */ 0x01, /* session present */ 0x00 /* return code 0 accepted */],
    packet: { cmd: 'connack', sessionPresent: true, returnCode: 0 },
  },
  {
    name: 'v4 CONNACK refused, not authorised',
    version: 4,
    bytes: [0x20, 0x02, /* CONNACK, length 2 */ 0x00, /* no session */ 0x05 /* return code 5 not authorised */],
    packet: { cmd: 'connack', sessionPresent: false, returnCode: 5 },
  },
  {
    name: 'v4 PUBLISH QoS 0',
    version: 4,
    bytes: [
      0x30, 7, // PUBLISH, QoS 0, remaining length 7
      ...str('a/b'), // topic
      0x68, 0x69, // payload "hi"
    ],
    packet: { cmd: 'publish', topic: 'a/b', payload: buf('hi'), qos: 0, dup: false, retain: false },
  },
  {
    name: 'v4 PUBLISH QoS 1, DUP, RETAIN',
    version: 4,
    bytes: [
      0x3b, 8, // PUBLISH | DUP 0x08 | QoS 1 0x02 | RETAIN 0x01, remaining length 8
      ...str('a/b'), // topic
      ...u16(10), // packet identifier 10
      0x78, // payload "x"
    ],
    packet: { cmd: 'publish', topic: 'a/b', payload: buf('x'), qos: 1, dup: true, retain: true, messageId: 10 },
  },
  { name: 'v4 PUBACK', version: 4, bytes: [0x40, 0x02, /* PUBACK */ ...u16(10) /* packet id */], packet: { cmd: 'puback', messageId: 10 } },
  { name: 'v4 PUBREC', version: 4, bytes: [0x50, 0x02, /* PUBREC */ ...u16(11) /* packet id */], packet: { cmd: 'pubrec', messageId: 11 } },
  { name: 'v4 PUBREL', version: 4, bytes: [0x62, 0x02, /* PUBREL, fixed flags 0b0010 */ ...u16(11)], packet: { cmd: 'pubrel', messageId: 11 } },
  { name: 'v4 PUBCOMP', version: 4, bytes: [0x70, 0x02, /* PUBCOMP */ ...u16(11)], packet: { cmd: 'pubcomp', messageId: 11 } },
  {
    name: 'v4 SUBSCRIBE two filters',
    version: 4,
    bytes: [
      0x82, 14, // SUBSCRIBE, fixed flags 0b0010, remaining length 14
      ...u16(1), // packet identifier 1
      ...str('a/+'), 0x01, // filter "a/+", requested QoS 1
      ...str('b/#'), 0x00, // filter "b/#", requested QoS 0
    ],
    packet: { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/+', qos: 1 }, { topic: 'b/#', qos: 0 }] },
  },
  {
    name: 'v4 SUBACK granted QoS 1 and failure',
    version: 4,
    bytes: [0x90, 0x04, /* SUBACK, length 4 */ ...u16(1), /* packet id */ 0x01, /* granted QoS 1 */ 0x80 /* failure */],
    packet: { cmd: 'suback', messageId: 1, granted: [1, 0x80] },
  },
  {
    name: 'v4 UNSUBSCRIBE',
    version: 4,
    bytes: [0xa2, 7, /* UNSUBSCRIBE, fixed flags 0b0010 */ ...u16(2), /* packet id */ ...str('a/+') /* filter */],
    packet: { cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['a/+'] },
  },
  { name: 'v4 UNSUBACK', version: 4, bytes: [0xb0, 0x02, /* UNSUBACK */ ...u16(2)], packet: { cmd: 'unsuback', messageId: 2 } },
  { name: 'v4 PINGREQ', version: 4, bytes: [0xc0, 0x00], packet: { cmd: 'pingreq' } },
  { name: 'v4 PINGRESP', version: 4, bytes: [0xd0, 0x00], packet: { cmd: 'pingresp' } },
  { name: 'v4 DISCONNECT', version: 4, bytes: [0xe0, 0x00], packet: { cmd: 'disconnect' } },

  // ---------------------------------------------------------------- MQTT 5
  {
    name: 'v5 CONNECT with properties, credentials and will properties',
    version: 5,
    bytes: [
      0x10, 103, // CONNECT, remaining length 103
      ...str('MQTT'), // protocol name
      0x05, // protocol level 5
      0xce, // flags: username 0x80, password 0x40, will QoS 1 0x08, will 0x04, clean start 0x02
      ...u16(60), // keep alive 60 s
      62, // property length 62
      0x11, ...u32(3600), // session expiry interval 3600
      0x22, ...u16(10), // topic alias maximum 10
      0x26, ...str('flytrap-sig'), ...str('0xabc'), // user property flytrap-sig=0xabc
      0x26, ...str('k'), ...str('1'), // user property k=1
      0x26, ...str('k'), ...str('2'), // user property k=2 (repeated name)
      0x15, ...str('flytrap-eth'), // authentication method
      0x16, ...u16(2), 0xde, 0xad, // authentication data
      ...str('dev-1'), // client identifier
      5, // will property length 5
      0x18, ...u32(5), // will delay interval 5 s
      ...str('w/t'), // will topic
      ...str('bye'), // will payload
      ...str('u'), // username
      ...str('pw'), // password
    ],
    packet: {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 60,
      clientId: 'dev-1',
      properties: {
        sessionExpiryInterval: 3600,
        topicAliasMaximum: 10,
        userProperties: up({ 'flytrap-sig': '0xabc', k: ['1', '2'] }),
        authenticationMethod: 'flytrap-eth',
        authenticationData: Buffer.from([0xde, 0xad]),
      },
      will: { topic: 'w/t', payload: buf('bye'), qos: 1, retain: false, properties: { willDelayInterval: 5 } },
      username: 'u',
      password: buf('pw'),
    },
  },
  {
    name: 'v5 CONNACK success with topic alias maximum',
    version: 5,
    bytes: [
      0x20, 6, // CONNACK, remaining length 6
      0x00, // no session present
      0x00, // reason code success
      3, // property length 3
      0x22, ...u16(5), // topic alias maximum 5
    ],
    packet: { cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { topicAliasMaximum: 5 } },
  },
  {
    name: 'v5 CONNACK not authorised',
    version: 5,
    bytes: [0x20, 3, /* CONNACK */ 0x00, /* flags */ 0x87, /* not authorised */ 0x00 /* no properties */],
    packet: { cmd: 'connack', sessionPresent: false, reasonCode: 0x87 },
  },
  {
    name: 'v5 PUBLISH binding topic alias 1',
    version: 5,
    bytes: [
      0x30, 11, // PUBLISH QoS 0, remaining length 11
      ...str('a/b'), // topic
      3, // property length 3
      0x23, ...u16(1), // topic alias 1
      0x68, 0x69, // payload "hi"
    ],
    packet: { cmd: 'publish', topic: 'a/b', payload: buf('hi'), qos: 0, dup: false, retain: false, properties: { topicAlias: 1 } },
  },
  {
    name: 'v5 PUBLISH with empty topic and alias only (quirk: topic is "")',
    version: 5,
    bytes: [
      0x32, 10, // PUBLISH QoS 1, remaining length 10
      ...str(''), // topic: zero length
      ...u16(7), // packet identifier 7
      3, // property length 3
      0x23, ...u16(1), // topic alias 1
      0x68, 0x69, // payload "hi"
    ],
    packet: { cmd: 'publish', topic: '', payload: buf('hi'), qos: 1, dup: false, retain: false, messageId: 7, properties: { topicAlias: 1 } },
  },
  {
    name: 'v5 PUBLISH with repeated user property and two subscription identifiers (quirk: arrays)',
    version: 5,
    bytes: [
      0x30, 22, // PUBLISH QoS 0, remaining length 22
      ...str('t'), // topic
      18, // property length 18
      0x26, ...str('a'), ...str('1'), // user property a=1
      0x26, ...str('a'), ...str('2'), // user property a=2
      0x0b, 0x05, // subscription identifier 5
      0x0b, 0x06, // subscription identifier 6
      // empty payload
    ],
    packet: {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(0),
      qos: 0,
      dup: false,
      retain: false,
      properties: { userProperties: up({ a: ['1', '2'] }), subscriptionIdentifier: [5, 6] },
    },
  },
  {
    name: 'v5 PUBACK success, short form',
    version: 5,
    bytes: [0x40, 0x02, /* PUBACK, length 2: reason code omitted = success */ ...u16(7)],
    packet: { cmd: 'puback', messageId: 7, reasonCode: 0 },
  },
  {
    name: 'v5 PUBACK not authorised',
    version: 5,
    bytes: [0x40, 0x04, /* PUBACK */ ...u16(7), /* packet id */ 0x87, /* not authorised */ 0x00 /* property length 0 */],
    packet: { cmd: 'puback', messageId: 7, reasonCode: 0x87 },
  },
  {
    name: 'v5 PUBACK with reason code but no property length (re-encoded in long form)',
    version: 5,
    bytes: [0x40, 0x03, /* PUBACK, length 3 */ ...u16(7), /* packet id */ 0x10 /* no matching subscribers */],
    packet: { cmd: 'puback', messageId: 7, reasonCode: 0x10 },
    encoded: [0x40, 0x04, ...u16(7), 0x10, 0x00],
  },
  {
    name: 'v5 PUBACK with reason string',
    version: 5,
    bytes: [
      0x40, 13, // PUBACK, remaining length 13
      ...u16(7), // packet identifier
      0x87, // not authorised
      9, // property length 9
      0x1f, ...str('denied'), // reason string
    ],
    packet: { cmd: 'puback', messageId: 7, reasonCode: 0x87, properties: { reasonString: 'denied' } },
  },
  {
    name: 'v5 PUBREC unspecified error',
    version: 5,
    bytes: [0x50, 0x04, /* PUBREC */ ...u16(8), 0x80, /* unspecified error */ 0x00 /* no properties */],
    packet: { cmd: 'pubrec', messageId: 8, reasonCode: 0x80 },
  },
  {
    name: 'v5 PUBREL packet identifier not found',
    version: 5,
    bytes: [0x62, 0x04, /* PUBREL */ ...u16(8), 0x92, /* packet identifier not found */ 0x00],
    packet: { cmd: 'pubrel', messageId: 8, reasonCode: 0x92 },
  },
  {
    name: 'v5 PUBCOMP success',
    version: 5,
    bytes: [0x70, 0x02, /* PUBCOMP, short form */ ...u16(8)],
    packet: { cmd: 'pubcomp', messageId: 8, reasonCode: 0 },
  },
  {
    name: 'v5 SUBSCRIBE with options and a shared filter',
    version: 5,
    bytes: [
      0x82, 24, // SUBSCRIBE, remaining length 24
      ...u16(3), // packet identifier 3
      2, // property length 2
      0x0b, 42, // subscription identifier 42
      ...str('$share/g/a/#'), // filter
      0x2e, // options: retain handling 2 (0x20), retain as published 0x08, no local 0x04, QoS 2
      ...str('b'), // filter
      0x01, // options: QoS 1
    ],
    packet: {
      cmd: 'subscribe',
      messageId: 3,
      properties: { subscriptionIdentifier: 42 },
      subscriptions: [
        { topic: '$share/g/a/#', qos: 2, nl: true, rap: true, rh: 2 },
        { topic: 'b', qos: 1, nl: false, rap: false, rh: 0 },
      ],
    },
  },
  {
    name: 'v5 SUBACK with reason codes and reason string',
    version: 5,
    bytes: [
      0x90, 11, // SUBACK, remaining length 11
      ...u16(3), // packet identifier
      5, // property length 5
      0x1f, ...str('no'), // reason string
      0x00, 0x87, 0x8f, // granted QoS 0, not authorised, topic filter invalid
    ],
    packet: { cmd: 'suback', messageId: 3, properties: { reasonString: 'no' }, granted: [0x00, 0x87, 0x8f] },
  },
  {
    name: 'v5 UNSUBSCRIBE',
    version: 5,
    bytes: [0xa2, 8, /* UNSUBSCRIBE */ ...u16(4), /* packet id */ 0x00, /* no properties */ ...str('a/+') /* filter */],
    packet: { cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['a/+'] },
  },
  {
    name: 'v5 UNSUBACK',
    version: 5,
    bytes: [0xb0, 5, /* UNSUBACK */ ...u16(4), 0x00, /* no properties */ 0x00, /* success */ 0x11 /* no subscription existed */],
    packet: { cmd: 'unsuback', messageId: 4, granted: [0x00, 0x11] },
  },
  {
    name: 'v5 DISCONNECT session taken over, with reason string',
    version: 5,
    bytes: [0xe0, 8, /* DISCONNECT */ 0x8e, /* session taken over */ 6, /* property length */ 0x1f, ...str('bye') /* reason string */],
    packet: { cmd: 'disconnect', reasonCode: 0x8e, properties: { reasonString: 'bye' } },
  },
  {
    name: 'v5 DISCONNECT, short form (re-encoded in long form)',
    version: 5,
    bytes: [0xe0, 0x00], // DISCONNECT, remaining length 0 = normal disconnection
    packet: { cmd: 'disconnect', reasonCode: 0 },
    encoded: [0xe0, 0x02, 0x00, 0x00],
  },
  {
    name: 'v5 AUTH continue authentication',
    version: 5,
    bytes: [
      0xf0, 22, // AUTH, remaining length 22
      0x18, // continue authentication
      20, // property length 20
      0x15, ...str('flytrap-eth'), // authentication method
      0x16, ...u16(3), 1, 2, 3, // authentication data
    ],
    packet: { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'flytrap-eth', authenticationData: Buffer.from([1, 2, 3]) } },
  },
  {
    name: 'v5 AUTH, remaining length 0 = success (mqtt-packet alone rejects it)',
    version: 5,
    bytes: [0xf0, 0x00],
    packet: { cmd: 'auth', reasonCode: 0 },
    encoded: [0xf0, 0x02, 0x00, 0x00],
  },
  { name: 'v5 PINGREQ', version: 5, bytes: [0xc0, 0x00], packet: { cmd: 'pingreq' } },
]

describe('decodePacket / encodePacket fixtures', () => {
  for (const f of fixtures) {
    describe(f.name, () => {
      const bytes = Buffer.from(f.bytes)
      test('parse', () => {
        assert.deepStrictEqual(decodePacket(bytes, f.version), f.packet)
      })
      test('generate', () => {
        assert.equal(encodePacket(f.packet, f.version).toString('hex'), Buffer.from(f.encoded ?? f.bytes).toString('hex'))
      })
      test('round-trip', () => {
        assert.deepStrictEqual(decodePacket(encodePacket(decodePacket(bytes, f.version), f.version), f.version), f.packet)
      })
    })
  }
})

interface BadFixture {
  name: string
  version: ProtocolVersion
  bytes: number[]
  error: typeof MalformedPacketError | typeof ProtocolError
  message: string
  reasonCode: number
}

const malformed: BadFixture[] = [
  {
    name: 'truncated: fewer bytes than the remaining length says',
    version: 4,
    bytes: [0x30, 0x08, /* PUBLISH, length 8 */ ...str('a')],
    error: MalformedPacketError,
    message: 'bytes are not exactly one complete packet',
    reasonCode: 0x81,
  },
  {
    name: 'two packets passed as one',
    version: 4,
    bytes: [0xc0, 0x00, 0xc0, 0x00], // PINGREQ, PINGREQ
    error: MalformedPacketError,
    message: 'bytes are not exactly one complete packet',
    reasonCode: 0x81,
  },
  {
    name: 'remaining length of 5 bytes',
    version: 4,
    bytes: [0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
    error: MalformedPacketError,
    message: 'variable byte integer is longer than 4 bytes',
    reasonCode: 0x81,
  },
  { name: 'reserved packet type 0', version: 4, bytes: [0x00, 0x00], error: MalformedPacketError, message: 'Not supported', reasonCode: 0x81 },
  {
    name: 'SUBSCRIBE with header flags 0 instead of 2',
    version: 4,
    bytes: [0x80, 6, /* SUBSCRIBE, flags 0 */ ...u16(1), ...str('a'), 0x00],
    error: MalformedPacketError,
    message: 'Invalid header flag bits, must be 0x2 for subscribe packet',
    reasonCode: 0x81,
  },
  {
    name: 'PUBLISH with QoS 3',
    version: 4,
    bytes: [0x36, 5, /* PUBLISH, QoS bits 11 */ ...str('a'), ...u16(1)],
    error: MalformedPacketError,
    message: 'Packet must not have both QoS bits set to 1',
    reasonCode: 0x81,
  },
  {
    name: 'v4 PUBACK with a trailing byte',
    version: 4,
    bytes: [0x40, 0x03, ...u16(1), 0x00],
    error: MalformedPacketError,
    message: 'puback has 1 unexpected trailing bytes',
    reasonCode: 0x81,
  },
  {
    name: 'PUBACK too short for a packet identifier (mqtt-packet reads -1)',
    version: 5,
    bytes: [0x40, 0x01, 0x00],
    error: MalformedPacketError,
    message: 'puback has 1 unexpected trailing bytes',
    reasonCode: 0x81,
  },
  {
    name: 'v4 DISCONNECT with a body',
    version: 4,
    bytes: [0xe0, 0x01, 0x00],
    error: MalformedPacketError,
    message: 'disconnect has 1 unexpected trailing bytes',
    reasonCode: 0x81,
  },
  {
    name: 'PINGREQ with a body',
    version: 5,
    bytes: [0xc0, 0x01, 0x00],
    error: MalformedPacketError,
    message: 'pingreq has 1 unexpected trailing bytes',
    reasonCode: 0x81,
  },
  {
    name: 'PUBACK with packet identifier 0',
    version: 4,
    bytes: [0x40, 0x02, ...u16(0)],
    error: ProtocolError,
    message: 'puback has an invalid packet identifier',
    reasonCode: 0x82,
  },
  {
    name: 'QoS 1 PUBLISH with packet identifier 0',
    version: 4,
    bytes: [0x32, 5, ...str('a'), ...u16(0)],
    error: ProtocolError,
    message: 'publish has an invalid packet identifier',
    reasonCode: 0x82,
  },
  {
    name: 'SUBSCRIBE without any filter',
    version: 4,
    bytes: [0x82, 0x02, ...u16(1)],
    error: ProtocolError,
    message: 'subscribe has an empty payload',
    reasonCode: 0x82,
  },
  {
    name: 'CONNECT with protocol level 6',
    version: 4,
    bytes: [0x10, 12, ...str('MQTT'), 0x06, 0x02, ...u16(60), ...str('')],
    error: ProtocolError,
    message: 'unsupported protocol version',
    reasonCode: 0x84,
  },
  {
    name: 'CONNECT with protocol name MQTX',
    version: 4,
    bytes: [0x10, 12, ...str('MQTX'), 0x04, 0x02, ...u16(60), ...str('')],
    error: MalformedPacketError,
    message: 'Invalid protocolId',
    reasonCode: 0x81,
  },
  {
    name: 'CONNECT with the reserved flag set',
    version: 4,
    bytes: [0x10, 12, ...str('MQTT'), 0x04, 0x03, ...u16(60), ...str('')],
    error: MalformedPacketError,
    message: 'Connect flag bit 0 must be 0, but got 1',
    reasonCode: 0x81,
  },
  {
    name: 'CONNECT with a trailing byte after the client identifier',
    version: 4,
    bytes: [0x10, 13, ...str('MQTT'), 0x04, 0x02, ...u16(60), ...str(''), 0x00],
    error: MalformedPacketError,
    message: 'connect has 1 unexpected trailing bytes',
    reasonCode: 0x81,
  },
  {
    name: 'v4 CONNACK without a return code',
    version: 4,
    bytes: [0x20, 0x01, 0x00],
    error: MalformedPacketError,
    message: 'CONNACK without a return code',
    reasonCode: 0x81,
  },
  {
    name: 'PUBLISH topic with invalid UTF-8 (0xFF)',
    version: 4,
    bytes: [0x30, 5, 0x00, 0x03, 0x61, 0xff, 0x62],
    error: MalformedPacketError,
    message: 'publish contains a string that is not valid UTF-8',
    reasonCode: 0x81,
  },
  {
    name: 'SUBSCRIBE filter with an overlong "/" (0xC0 0xAF)',
    version: 4,
    bytes: [0x82, 8, ...u16(1), 0x00, 0x03, 0x61, 0xc0, 0xaf, 0x00],
    error: MalformedPacketError,
    message: 'subscribe contains a string that is not valid UTF-8',
    reasonCode: 0x81,
  },
  {
    name: 'UNSUBSCRIBE filter with an encoded surrogate (0xED 0xA0 0x80)',
    version: 5,
    bytes: [0xa2, 8, ...u16(1), 0x00, 0x00, 0x03, 0xed, 0xa0, 0x80],
    error: MalformedPacketError,
    message: 'unsubscribe contains a string that is not valid UTF-8',
    reasonCode: 0x81,
  },
  {
    name: 'PUBLISH topic containing U+0000',
    version: 4,
    bytes: [0x30, 5, 0x00, 0x03, 0x61, 0x00, 0x62],
    error: MalformedPacketError,
    message: 'publish contains U+0000 in a string',
    reasonCode: 0x81,
  },
  {
    name: 'user property name containing U+0000',
    version: 5,
    bytes: [0x30, 11, ...str('t'), 7, 0x26, 0x00, 0x01, 0x00, ...str('v')],
    error: MalformedPacketError,
    message: 'publish contains U+0000 in a string',
    reasonCode: 0x81,
  },
  {
    name: 'PUBLISH with the topic alias property twice',
    version: 5,
    bytes: [0x30, 10, ...str('t'), 6, 0x23, ...u16(1), 0x23, ...u16(2)],
    error: ProtocolError,
    message: 'publish repeats the topicAlias property',
    reasonCode: 0x82,
  },
  {
    name: 'PUBLISH whose topic alias straddles the property length',
    version: 5,
    bytes: [0x30, 8, ...str('t'), 1, /* property length 1, but: */ 0x23, ...u16(5), 0x78],
    error: MalformedPacketError,
    message: 'PUBLISH property length does not match its properties',
    reasonCode: 0x81,
  },
  {
    name: 'PUBLISH with an unknown property identifier',
    version: 5,
    bytes: [0x30, 5, ...str('t'), 1, 0x7f],
    error: MalformedPacketError,
    message: 'Unknown property',
    reasonCode: 0x81,
  },
  {
    name: 'AUTH on a 3.1.1 connection',
    version: 4,
    bytes: [0xf0, 0x02, 0x00, 0x00],
    error: MalformedPacketError,
    message: 'Not supported auth packet for this version MQTT',
    reasonCode: 0x81,
  },
  {
    name: 'v5 PUBACK with an undefined reason code',
    version: 5,
    bytes: [0x40, 0x04, ...u16(1), 0x05, 0x00],
    error: MalformedPacketError,
    message: 'Invalid puback reason code',
    reasonCode: 0x81,
  },
]

describe('decodePacket rejects malformed packets with the exact error', () => {
  for (const f of malformed) {
    test(f.name, () => {
      assert.throws(
        () => decodePacket(Buffer.from(f.bytes), f.version),
        (err: unknown) => {
          assert.ok(err instanceof f.error, `expected ${f.error.name}, got ${String(err)}`)
          assert.ok(err instanceof MqttProtocolError)
          assert.equal(err.message, f.message)
          assert.equal(err.reasonCode, f.reasonCode)
          return true
        },
      )
    })
  }

  test('a genuine U+FFFD in a topic is accepted', () => {
    const bytes = Buffer.from([0x30, 7, 0x00, 0x03, 0xef, 0xbf, 0xbd, 0x68, 0x69]) // topic "\uFFFD", payload "hi"
    assert.equal((decodePacket(bytes, 4) as { topic: string }).topic, '\uFFFD')
  })

  test('a failed decode does not affect the next one (mqtt-packet keeps a stale offset after an error)', () => {
    for (const version of [4, 5] as const) {
      assert.throws(() => decodePacket(Buffer.from([0x10, 12, ...str('MQTX'), 0x04, 0x02, ...u16(60), ...str('')]), version), MalformedPacketError)
      assert.deepStrictEqual(decodePacket(Buffer.from(fixtures[0]!.bytes), version), fixtures[0]!.packet)
    }
  })
})

describe('mqtt-packet quirks', () => {
  const v4Connect = Buffer.from(fixtures[0]!.bytes)
  const v5Publish = Buffer.from(fixtures.find((f) => f.name.startsWith('v5 PUBLISH binding'))!.bytes)

  test('the parser is stateful: a CONNECT does not change the version used for later packets', () => {
    // mqtt-packet's parser adopts the settings of the last CONNECT it parsed; decodePacket pins them.
    decodePacket(v4Connect, 5)
    assert.deepStrictEqual((decodePacket(v5Publish, 5) as { properties?: unknown }).properties, { topicAlias: 1 })
    const v5Connect = Buffer.from(fixtures.find((f) => f.name.startsWith('v5 CONNECT'))!.bytes)
    decodePacket(v5Connect, 4)
    // Read as 3.1.1, the property bytes are part of the payload: no properties.
    const asV4 = decodePacket(Buffer.from([0x30, 7, ...str('a/b'), 0x00, 0x78]), 4) as { payload: Buffer; properties?: unknown }
    assert.equal(asV4.properties, undefined)
    assert.deepEqual([...asV4.payload], [0x00, 0x78])
  })

  test('interleaved user properties lose their relative order on re-encode', () => {
    const bytes = Buffer.from([
      0x30, 25, // PUBLISH, remaining length 25
      ...str('t'), // topic
      21, // property length 21
      0x26, ...str('a'), ...str('1'), // a=1
      0x26, ...str('b'), ...str('2'), // b=2
      0x26, ...str('a'), ...str('3'), // a=3
    ])
    const p = decodePacket(bytes, 5) as { properties: { userProperties: UserProperties } }
    assert.deepStrictEqual(p.properties.userProperties, up({ a: ['1', '3'], b: '2' }))
    const reencoded = encodePacket(p as unknown as Packet, 5)
    assert.deepEqual([...reencoded.subarray(6)], [0x26, ...str('a'), ...str('1'), 0x26, ...str('a'), ...str('3'), 0x26, ...str('b'), ...str('2')])
  })

  test('a user property named __proto__ is plain data', () => {
    const bytes = Buffer.from([0x30, 19, ...str('t'), 15, 0x26, ...str('__proto__'), ...str('x')])
    const p = decodePacket(bytes, 5) as { properties: { userProperties: UserProperties } }
    assert.deepEqual(userPropertyValues(p.properties.userProperties, '__proto__'), ['x'])
    const kept = withoutUserProperties(p, () => false)
    assert.deepEqual(Object.keys(kept.properties.userProperties), ['__proto__'])
    assert.equal(Object.getPrototypeOf(kept.properties.userProperties), null)
  })

  test('a byte property with value 2 reads as true and re-encodes as 1', () => {
    const bytes = Buffer.from([0x30, 6, ...str('t'), 2, 0x01, 0x02]) // payload format indicator = 2 (invalid)
    const p = decodePacket(bytes, 5)
    assert.deepStrictEqual((p as { properties?: unknown }).properties, { payloadFormatIndicator: true })
    assert.deepEqual([...encodePacket(p, 5)], [0x30, 6, ...str('t'), 2, 0x01, 0x01])
  })

  test('encoding: a password without a username is refused even for MQTT 5', () => {
    const c: ConnectPacket = { cmd: 'connect', protocolVersion: 5, clientId: 'c', password: buf('p') }
    assert.throws(() => encodePacket(c, 5), { name: 'TypeError', message: 'cannot encode connect: Username is required to use password' })
  })

  test('encoding: values mqtt-packet would silently mangle are refused', () => {
    assert.throws(() => encodePacket({ cmd: 'publish', topic: 'a', payload: '', qos: 3 as 0, dup: false, retain: false, messageId: 1 }, 4), {
      message: 'cannot encode publish: QoS must be 0, 1 or 2',
    })
    assert.throws(() => encodePacket({ cmd: 'puback', messageId: 70_000 }, 4), { message: 'cannot encode puback: packet identifier must be in 1..65535' })
    assert.throws(() => encodePacket({ cmd: 'disconnect', reasonCode: 256 }, 5), { message: 'cannot encode disconnect: reason code must be a byte' })
    assert.throws(() => encodePacket({ cmd: 'auth', reasonCode: 0 }, 4), { message: 'cannot encode auth: Invalid mqtt version for auth packet' })
  })

  test('encoding a CONNECT without protocolVersion uses the given version', () => {
    const bytes = encodePacket({ cmd: 'connect', clientId: 'c1', keepalive: 60, clean: true }, 5)
    assert.equal((decodePacket(bytes, 5) as ConnectPacket).protocolVersion, 5)
  })
})

describe('credentials', () => {
  const v5Connect = () => decodePacket(Buffer.from(fixtures.find((f) => f.name.startsWith('v5 CONNECT'))!.bytes), 5) as ConnectPacket

  test('stripCredentials removes username, password, auth method/data and flytrap-* user properties', () => {
    const original = v5Connect()
    const stripped = stripCredentials(original)
    assert.deepStrictEqual(stripped, {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 60,
      clientId: 'dev-1',
      properties: { sessionExpiryInterval: 3600, topicAliasMaximum: 10, userProperties: up({ k: ['1', '2'] }) },
      will: { topic: 'w/t', payload: buf('bye'), qos: 1, retain: false, properties: { willDelayInterval: 5 } },
    })
    const wire = encodePacket(stripped, 5)
    for (const secret of ['0xabc', 'flytrap', 'pw']) assert.equal(wire.includes(secret), false, `${secret} leaked upstream`)
    assert.equal(wire.includes(Buffer.from([0xde, 0xad])), false)
    assert.equal(original.username, 'u', 'the input is not modified')
  })

  test('stripCredentials matches the flytrap- prefix case-insensitively and drops an emptied properties section', () => {
    const c: ConnectPacket = { cmd: 'connect', protocolVersion: 5, clientId: 'c', properties: { userProperties: up({ 'FlyTrap-Sig': 'x' }) } }
    assert.deepStrictEqual(stripCredentials(c), { cmd: 'connect', protocolVersion: 5, clientId: 'c' })
    assert.ok(isCredentialProperty('FLYTRAP-anything'))
    assert.ok(!isCredentialProperty('flytrapx'))
  })

  test('stripCredentials can substitute the upstream credentials', () => {
    const stripped = stripCredentials(v5Connect(), { username: 'proxy', password: buf('s3cret') })
    assert.equal(stripped.username, 'proxy')
    assert.deepEqual(stripped.password, buf('s3cret'))
  })

  test('stripCredentials on a v4 CONNECT', () => {
    const c = decodePacket(Buffer.from(fixtures[1]!.bytes), 4) as ConnectPacket
    const wire = encodePacket(stripCredentials(c), 4)
    assert.deepEqual(
      [...wire],
      [0x10, 27, ...str('MQTT'), 0x04, 0x2e, /* will retain, will QoS 1, will, clean */ ...u16(30), ...str('dev-1'), ...str('w/t'), ...str('bye')],
    )
  })

  test('withoutUserProperties filters by name and value and keeps the rest', () => {
    const p = { cmd: 'publish' as const, properties: { contentType: 'x', userProperties: up({ a: ['1', '2'], b: '3' }) } }
    assert.deepStrictEqual(withoutUserProperties(p, (name, value) => name === 'a' && value === '1').properties, {
      contentType: 'x',
      userProperties: up({ a: '2', b: '3' }),
    })
    assert.deepStrictEqual(withoutUserProperties(p, () => true), { cmd: 'publish', properties: { contentType: 'x' } })
    const bare: { cmd: string; properties?: { userProperties?: UserProperties } } = { cmd: 'x' }
    assert.deepStrictEqual(withoutUserProperties(bare, () => true), { cmd: 'x' })
  })

  test('userPropertyValues normalises string | string[] and ignores inherited names', () => {
    const props = up({ one: 'x', many: ['y', 'z'] })
    assert.deepEqual(userPropertyValues(props, 'one'), ['x'])
    assert.deepEqual(userPropertyValues(props, 'many'), ['y', 'z'])
    assert.deepEqual(userPropertyValues(props, 'none'), [])
    assert.deepEqual(userPropertyValues({ a: 'b' }, 'constructor'), [])
    assert.deepEqual(userPropertyValues(undefined, 'a'), [])
  })
})

describe('refusal and acknowledgement builders', () => {
  const mapping: Array<[number, string, number]> = [
    [0x80, 'unspecified error', 3],
    [0x81, 'malformed packet', 3],
    [0x82, 'protocol error', 3],
    [0x84, 'unsupported protocol version', 1],
    [0x85, 'client identifier not valid', 2],
    [0x86, 'bad user name or password', 4],
    [0x87, 'not authorised', 5],
    [0x88, 'server unavailable', 3],
    [0x89, 'server busy', 3],
    [0x8a, 'banned', 5],
    [0x8c, 'bad authentication method', 4],
    [0x9f, 'connection rate exceeded', 3],
  ]
  for (const [v5, label, v4] of mapping) {
    test(`connackRefusal 0x${v5.toString(16)} (${label}) → 3.1.1 return code ${v4}`, () => {
      assert.equal(connackReturnCodeFor(v5), v4)
      assert.deepEqual([...encodePacket(connackRefusal(4, v5), 4)], [0x20, 0x02, 0x00, v4])
      assert.deepEqual([...encodePacket(connackRefusal(5, v5), 5)], [0x20, 0x03, 0x00, v5, 0x00])
    })
  }

  test('connackRefusal carries MQTT 5 properties and refuses success codes', () => {
    const c = connackRefusal(5, ReasonCode.NotAuthorized, { reasonString: 'no' })
    assert.deepEqual([...encodePacket(c, 5)], [0x20, 8, 0x00, 0x87, 5, 0x1f, ...str('no')])
    assert.throws(() => connackRefusal(4, 0), RangeError)
    assert.throws(() => connackRefusal(5, 0x18), RangeError)
  })

  test('pubackFor / pubrecFor / pubcompFor', () => {
    assert.deepEqual([...encodePacket(pubackFor(5, 9, ReasonCode.NotAuthorized), 5)], [0x40, 0x04, 0x00, 0x09, 0x87, 0x00])
    assert.deepEqual([...encodePacket(pubackFor(5, 9), 5)], [0x40, 0x02, 0x00, 0x09])
    assert.deepEqual([...encodePacket(pubackFor(4, 9, ReasonCode.NotAuthorized), 4)], [0x40, 0x02, 0x00, 0x09])
    assert.deepEqual([...encodePacket(pubrecFor(5, 9, ReasonCode.NotAuthorized), 5)], [0x50, 0x04, 0x00, 0x09, 0x87, 0x00])
    assert.deepEqual([...encodePacket(pubrecFor(4, 9, ReasonCode.NotAuthorized), 4)], [0x50, 0x02, 0x00, 0x09])
    assert.deepEqual([...encodePacket(pubcompFor(5, 9), 5)], [0x70, 0x02, 0x00, 0x09])
    assert.deepEqual([...encodePacket(pubcompFor(4, 9), 4)], [0x70, 0x02, 0x00, 0x09])
  })

  test('subackFor maps every failure to 0x80 for 3.1.1', () => {
    assert.deepEqual([...encodePacket(subackFor(4, 3, [0x01, 0x87, 0x8f, 0x02]), 4)], [0x90, 0x06, 0x00, 0x03, 0x01, 0x80, 0x80, 0x02])
    assert.deepEqual([...encodePacket(subackFor(5, 3, [0x01, 0x87]), 5)], [0x90, 0x05, 0x00, 0x03, 0x00, 0x01, 0x87])
  })

  test('disconnectV5', () => {
    assert.deepEqual([...encodePacket(disconnectV5(ReasonCode.TopicAliasInvalid), 5)], [0xe0, 0x02, 0x94, 0x00])
    assert.deepEqual([...encodePacket(disconnectV5(0x87, 'revoked'), 5)], [0xe0, 12, 0x87, 10, 0x1f, ...str('revoked')])
  })
})
