import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  encodeRemainingLength,
  type Frame,
  FrameReader,
  MalformedPacketError,
  MAX_REMAINING_LENGTH,
  PacketTooLargeError,
  readFixedHeader,
  readVariableByteInteger,
} from '../../../src/lib/mqtt/framing.js'

// Variable Byte Integer boundaries from MQTT 5 §1.5.5, Table 1-1.
const varints: Array<[number, number[]]> = [
  [0, [0x00]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [16_383, [0xff, 0x7f]],
  [16_384, [0x80, 0x80, 0x01]],
  [2_097_151, [0xff, 0xff, 0x7f]],
  [2_097_152, [0x80, 0x80, 0x80, 0x01]],
  [268_435_455, [0xff, 0xff, 0xff, 0x7f]],
]

// A few whole packets used as stream content.
const PINGREQ = Buffer.from([
  0xc0, // PINGREQ, flags 0
  0x00, // remaining length 0
])
const PUBLISH_SMALL = Buffer.from([
  0x32, // PUBLISH, QoS 1
  0x08, // remaining length 8
  0x00, 0x03, 0x61, 0x2f, 0x62, // topic "a/b"
  0x00, 0x01, // packet identifier 1
  0x78, // payload "x"
])
const PUBLISH_200 = Buffer.concat([
  Buffer.from([
    0x30, // PUBLISH, QoS 0
    0xc8, 0x01, // remaining length 200 (two bytes: 0x48 + 1×128)
    0x00, 0x01, 0x74, // topic "t"
  ]),
  Buffer.alloc(197, 0x5a), // payload: 197 × "Z"
])
const STREAM = Buffer.concat([PINGREQ, PUBLISH_SMALL, PUBLISH_200, PINGREQ])

function summary(frames: Iterable<Frame>) {
  return [...frames].map((f) => ({
    type: f.type,
    flags: f.flags,
    headerLength: f.headerLength,
    remainingLength: f.remainingLength,
    hex: f.bytes.toString('hex'),
  }))
}

const EXPECTED = [
  { type: 12, flags: 0, headerLength: 2, remainingLength: 0, hex: PINGREQ.toString('hex') },
  { type: 3, flags: 2, headerLength: 2, remainingLength: 8, hex: PUBLISH_SMALL.toString('hex') },
  { type: 3, flags: 0, headerLength: 3, remainingLength: 200, hex: PUBLISH_200.toString('hex') },
  { type: 12, flags: 0, headerLength: 2, remainingLength: 0, hex: PINGREQ.toString('hex') },
]

function isError(ctor: new (...args: never[]) => Error, message: string, reasonCode: number) {
  return (err: unknown) => {
    assert.ok(err instanceof ctor, `expected ${ctor.name}, got ${String(err)}`)
    assert.equal(err.message, message)
    assert.equal((err as Error & { reasonCode: number }).reasonCode, reasonCode)
    return true
  }
}

describe('encodeRemainingLength / readVariableByteInteger', () => {
  for (const [value, bytes] of varints) {
    test(`${value} ⇄ ${Buffer.from(bytes).toString('hex')}`, () => {
      assert.deepEqual([...encodeRemainingLength(value)], bytes)
      assert.deepEqual(readVariableByteInteger(Buffer.from(bytes)), { value, length: bytes.length })
    })
  }

  test('rejects values that do not fit in 4 bytes or are not integers', () => {
    for (const bad of [-1, MAX_REMAINING_LENGTH + 1, 1.5, Number.NaN]) {
      assert.throws(() => encodeRemainingLength(bad), RangeError)
    }
  })

  test('needs more bytes while the continuation bit is set', () => {
    assert.equal(readVariableByteInteger(Buffer.from([0x80, 0x80])), null)
    assert.equal(readVariableByteInteger(Buffer.from([0x05]), 1), null)
  })

  test('a 4th byte with the continuation bit is malformed without waiting for a 5th', () => {
    assert.throws(
      () => readVariableByteInteger(Buffer.from([0xff, 0xff, 0xff, 0x80])),
      isError(MalformedPacketError, 'variable byte integer is longer than 4 bytes', 0x81),
    )
  })

  test('accepts a non-minimal encoding (unambiguous, allowed by 3.1.1)', () => {
    assert.deepEqual(readVariableByteInteger(Buffer.from([0x80, 0x00])), { value: 0, length: 2 })
  })

  test('readFixedHeader splits type and flags', () => {
    assert.deepEqual(readFixedHeader(Buffer.from([0x3d, 0x80, 0x01])), { type: 3, flags: 0x0d, headerLength: 3, remainingLength: 128 })
    assert.equal(readFixedHeader(Buffer.from([0x3d])), null)
  })
})

describe('FrameReader', () => {
  test('splits several packets delivered in one chunk, zero-copy', () => {
    const reader = new FrameReader({ maxPacketSize: 1024 })
    const frames = [...reader.push(STREAM)]
    assert.deepEqual(summary(frames), EXPECTED)
    for (const f of frames) assert.equal(f.bytes.buffer, STREAM.buffer, 'frame inside one chunk must be a subarray')
    assert.equal(reader.bufferedBytes, 0)
  })

  test('byte-at-a-time feeding yields the same frames', () => {
    const reader = new FrameReader({ maxPacketSize: 1024 })
    const frames: Frame[] = []
    for (const byte of STREAM) frames.push(...reader.push(Buffer.from([byte])))
    assert.deepEqual(summary(frames), EXPECTED)
    assert.equal(reader.bufferedBytes, 0)
  })

  test('any split of the stream into chunks yields the same frames', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), STREAM.length]
        const reader = new FrameReader({ maxPacketSize: 1024 })
        const frames: Frame[] = []
        for (let i = 1; i < points.length; i++) {
          frames.push(...reader.push(STREAM.subarray(points[i - 1], points[i])))
        }
        assert.deepEqual(summary(frames), EXPECTED)
      }),
    )
  })

  test('a frame spanning chunks is copied into one buffer; a frame in one chunk is not', () => {
    const reader = new FrameReader({ maxPacketSize: 1024 })
    assert.deepEqual([...reader.push(PUBLISH_200.subarray(0, 100))], [])
    assert.equal(reader.bufferedBytes, 100)
    const [frame] = [...reader.push(PUBLISH_200.subarray(100))]
    assert.ok(frame)
    assert.notEqual(frame.bytes.buffer, PUBLISH_200.buffer)
    assert.deepEqual(frame.bytes, PUBLISH_200)
  })

  test('a long run of one-byte chunks for a single large frame', () => {
    const big = Buffer.concat([Buffer.from([0x30, 0xe5, 0x07, 0x00, 0x01, 0x74]), Buffer.alloc(994, 1)]) // 997-byte body
    const reader = new FrameReader({ maxPacketSize: 2048 })
    const frames: Frame[] = []
    for (let i = 0; i < big.length; i++) frames.push(...reader.push(big.subarray(i, i + 1)))
    frames.push(...reader.push(PINGREQ))
    assert.equal(frames.length, 2)
    assert.deepEqual(frames[0]?.bytes, big)
    assert.equal(frames[0]?.remainingLength, 997)
    assert.deepEqual(frames[1]?.bytes, PINGREQ)
  })

  test('frames left un-iterated stay buffered for read()', () => {
    const reader = new FrameReader({ maxPacketSize: 1024 })
    const it = reader.push(STREAM)
    assert.equal(it.next().value?.type, 12)
    // The caller paused here (deciding on a packet); the rest comes out later, in order.
    assert.equal(reader.read()?.remainingLength, 8)
    assert.deepEqual(summary([...reader.push(Buffer.alloc(0))]), EXPECTED.slice(2))
    assert.equal(reader.read(), undefined)
  })

  test('empty chunks are ignored', () => {
    const reader = new FrameReader({ maxPacketSize: 1024 })
    assert.deepEqual([...reader.push(Buffer.alloc(0))], [])
    assert.deepEqual(summary(reader.push(PINGREQ)), EXPECTED.slice(0, 1))
  })

  test('a 5-byte remaining length is malformed (0x81), detected at the 4th length byte', () => {
    const reader = new FrameReader({ maxPacketSize: MAX_REMAINING_LENGTH })
    const header = [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f] // PUBLISH, remaining length with 5 bytes
    for (const byte of header.slice(0, 4)) assert.deepEqual([...reader.push(Buffer.from([byte]))], [])
    assert.throws(() => [...reader.push(Buffer.from([header[4] as number]))], isError(MalformedPacketError, 'variable byte integer is longer than 4 bytes', 0x81))
  })

  test('a declared size above maxPacketSize is rejected before the body arrives (0x95)', () => {
    const reader = new FrameReader({ maxPacketSize: 100 })
    // PUBLISH, remaining length 268,435,455: only the 5 header bytes are ever sent.
    const header = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])
    assert.throws(
      () => [...reader.push(header)],
      (err: unknown) => {
        isError(PacketTooLargeError, 'packet of 268435460 bytes exceeds the maximum packet size of 100', 0x95)(err)
        assert.equal((err as PacketTooLargeError).declaredSize, 268_435_460)
        assert.equal((err as PacketTooLargeError).maxPacketSize, 100)
        return true
      },
    )
    assert.equal(reader.bufferedBytes, 0, 'nothing is kept after the failure')
  })

  test('the limit counts the whole packet, header included', () => {
    const exact = new FrameReader({ maxPacketSize: PUBLISH_SMALL.length })
    assert.equal([...exact.push(PUBLISH_SMALL)].length, 1)
    const tooSmall = new FrameReader({ maxPacketSize: PUBLISH_SMALL.length - 1 })
    assert.throws(() => [...tooSmall.push(PUBLISH_SMALL)], PacketTooLargeError)
  })

  test('after an error every later call rethrows the same error', () => {
    const reader = new FrameReader({ maxPacketSize: 10 })
    let first: unknown
    try {
      Array.from(reader.push(Buffer.from([0x30, 0x7f]))) // PUBLISH declaring 127 bytes > 10
    } catch (err) {
      first = err
    }
    assert.ok(first instanceof PacketTooLargeError)
    assert.throws(() => reader.push(PINGREQ), (err) => err === first)
    assert.throws(() => reader.read(), (err) => err === first)
  })

  test('rejects an invalid maxPacketSize', () => {
    for (const maxPacketSize of [0, 1, 1.5, MAX_REMAINING_LENGTH + 6]) {
      assert.throws(() => new FrameReader({ maxPacketSize }), RangeError)
    }
  })
})
