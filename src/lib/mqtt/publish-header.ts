/**
 * The fields of a PUBLISH the proxy decides on (topic, QoS, packet id, topic alias), read straight from the
 * frame without a general decoder: this runs for every message in both directions. It reads the topic exactly
 * as a broker does (2-byte length + UTF-8 bytes) and refuses what a broker would refuse there, so the
 * decision and the broker can never disagree about which topic a packet is for. Packets whose properties it
 * does not need to understand are still forwarded as their original bytes.
 */
import { isUtf8 } from 'node:buffer'
import type { Frame } from './framing.js'
import { MalformedPacketError, ProtocolError, ReasonCode } from './reason-codes.js'

export interface PublishHeader {
  topic: string
  qos: 0 | 1 | 2
  /** Present for QoS 1 and 2. */
  messageId?: number
  /** MQTT 5 Topic Alias property, when present. */
  topicAlias?: number
}

const TOPIC_ALIAS = 0x23

/** Byte length of each MQTT 5 property's value that can appear in PUBLISH (identifier → kind). */
const PUBLISH_PROPERTIES: Record<number, 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair'> = {
  0x01: 'byte', // payload format indicator
  0x02: 'u32', // message expiry interval
  0x03: 'utf8', // content type
  0x08: 'utf8', // response topic
  0x09: 'binary', // correlation data
  0x0b: 'varint', // subscription identifier (broker → client)
  0x23: 'u16', // topic alias
  0x26: 'pair', // user property
}

export function readPublishHeader(frame: Frame, version: 4 | 5): PublishHeader {
  const b = frame.bytes
  const end = b.length
  const qos = (frame.flags >> 1) & 3
  if (qos === 3) throw new MalformedPacketError('PUBLISH with QoS 3')
  let i = frame.headerLength
  if (i + 2 > end) throw new MalformedPacketError('PUBLISH too short for its topic length')
  const topicLength = b.readUInt16BE(i)
  i += 2
  if (i + topicLength > end) throw new MalformedPacketError('PUBLISH topic runs past the packet')
  const topicBytes = b.subarray(i, i + topicLength)
  // Invalid UTF-8 or U+0000 in a topic is malformed (MQTT §1.5.4): refuse rather than guess what the broker reads.
  if (!isUtf8(topicBytes) || topicBytes.includes(0)) throw new MalformedPacketError('PUBLISH topic is not valid UTF-8')
  const topic = topicBytes.toString('utf8')
  i += topicLength
  let messageId: number | undefined
  if (qos > 0) {
    if (i + 2 > end) throw new MalformedPacketError('PUBLISH too short for its packet identifier')
    messageId = b.readUInt16BE(i)
    if (messageId === 0) throw new ProtocolError('PUBLISH packet identifier 0')
    i += 2
  }
  const header: PublishHeader = { topic, qos: qos as 0 | 1 | 2, messageId }
  if (version === 5) {
    try {
      header.topicAlias = readTopicAlias(b, i)
    } catch (err) {
      // A length field pointing past the buffer is a malformed packet, not a crash.
      if (err instanceof RangeError) throw new MalformedPacketError('PUBLISH properties are truncated')
      throw err
    }
  }
  return header
}

/** Walks the property list (it must be well-formed up to where it ends) and returns the Topic Alias, if any. */
function readTopicAlias(b: Buffer, start: number): number | undefined {
  const [length, lenBytes] = varint(b, start)
  let i = start + lenBytes
  const end = i + length
  if (end > b.length) throw new MalformedPacketError('PUBLISH properties run past the packet')
  let alias: number | undefined
  while (i < end) {
    const id = b[i++]!
    const kind = PUBLISH_PROPERTIES[id]
    if (kind === undefined) throw new ProtocolError(`property 0x${id.toString(16)} is not allowed in PUBLISH`)
    switch (kind) {
      case 'byte':
        i += 1
        break
      case 'u16':
        if (id === TOPIC_ALIAS) {
          if (alias !== undefined) throw new ProtocolError('Topic Alias given twice')
          alias = b.readUInt16BE(i)
        }
        i += 2
        break
      case 'u32':
        i += 4
        break
      case 'varint':
        i += varint(b, i)[1]
        break
      case 'utf8':
      case 'binary':
        i += 2 + b.readUInt16BE(i)
        break
      case 'pair':
        i += 2 + b.readUInt16BE(i)
        i += 2 + b.readUInt16BE(i)
        break
    }
  }
  if (i !== end) throw new MalformedPacketError('PUBLISH properties overrun their length')
  if (alias === 0) throw new ProtocolError('Topic Alias 0', ReasonCode.TopicAliasInvalid)
  return alias
}

function varint(b: Buffer, start: number): [number, number] {
  let value = 0
  for (let n = 0; n < 4; n++) {
    if (start + n >= b.length) throw new MalformedPacketError('truncated variable byte integer')
    const byte = b[start + n]!
    value += (byte & 0x7f) * 128 ** n
    if ((byte & 0x80) === 0) return [value, n + 1]
  }
  throw new MalformedPacketError('variable byte integer longer than 4 bytes')
}
