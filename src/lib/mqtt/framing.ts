/**
 * Splits a TCP byte stream into complete MQTT control packets without interpreting them.
 *
 * The proxy forwards packets it does not change byte-for-byte, so a frame keeps the original bytes; it only
 * decodes (packets.ts) what it must inspect. Size limits are enforced here, from the fixed header alone,
 * before any body byte is buffered beyond what the peer already sent.
 */
import { MalformedPacketError, PacketTooLargeError } from './reason-codes.js'

export { MalformedPacketError, PacketTooLargeError } from './reason-codes.js'

/** Control packet types (MQTT 5 §2.1.2); 0 is reserved and never valid on the wire. */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const

/** Largest value a 4-byte Variable Byte Integer can carry (MQTT 5 §1.5.5). */
export const MAX_REMAINING_LENGTH = 268_435_455

/** Largest possible packet: 1 type byte + 4 length bytes + the largest body. */
export const MAX_PACKET_SIZE_LIMIT = 1 + 4 + MAX_REMAINING_LENGTH

export interface FixedHeader {
  /** Packet type, the high nibble of the first byte. */
  type: number
  /** The low nibble of the first byte (PUBLISH: DUP, QoS, RETAIN; fixed values for the other types). */
  flags: number
  /** 1 type byte plus 1–4 remaining-length bytes. */
  headerLength: number
  /** Declared body length. */
  remainingLength: number
}

export interface Frame extends FixedHeader {
  /** The complete original packet (header and body); may share memory with the pushed chunk: do not mutate. */
  bytes: Buffer
}

export interface FrameReaderOptions {
  /** Largest total packet size (header included, as MQTT 5 Maximum Packet Size counts it) to accept. */
  maxPacketSize: number
}

/** Encodes a remaining length (or any Variable Byte Integer) in the minimum number of bytes. */
export function encodeRemainingLength(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > MAX_REMAINING_LENGTH) {
    throw new RangeError(`remaining length must be an integer in 0..${MAX_REMAINING_LENGTH}, got ${n}`)
  }
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

/**
 * Reads a Variable Byte Integer at `offset`. Returns null when more bytes are needed, and throws
 * MalformedPacketError as soon as a 4th byte still has its continuation bit set (waiting for a 5th byte
 * would let a peer park a connection on a header that can never be valid).
 *
 * Non-minimal encodings (e.g. 0x80 0x00 for 0) are accepted: they are unambiguous, and MQTT 3.1.1 does not
 * forbid them.
 */
export function readVariableByteInteger(buf: Uint8Array, offset = 0): { value: number; length: number } | null {
  let value = 0
  let multiplier = 1
  for (let i = 0; i < 4; i++) {
    if (offset + i >= buf.length) return null
    const byte = buf[offset + i] as number
    value += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) return { value, length: i + 1 }
    multiplier *= 128
  }
  throw new MalformedPacketError('variable byte integer is longer than 4 bytes')
}

/** Reads a fixed header at the start of `buf`; null when more bytes are needed. */
export function readFixedHeader(buf: Uint8Array): FixedHeader | null {
  if (buf.length < 2) return null
  const length = readVariableByteInteger(buf, 1)
  if (length === null) return null
  const first = buf[0] as number
  return { type: first >> 4, flags: first & 0x0f, headerLength: 1 + length.length, remainingLength: length.value }
}

/**
 * Where a fixed header that straddles chunks is gathered: one for every reader (it is read before peekHeader
 * returns, and only plain numbers leave it), not a 5-byte Buffer and ArrayBuffer per connection direction.
 */
const HEADER_SCRATCH = Buffer.alloc(5)

/**
 * Incremental frame splitter: `push()` each chunk read from the socket and iterate the frames it yields.
 *
 * Chunks are kept in a list and only copied when a frame spans several of them; a frame inside one chunk is
 * a zero-copy subarray. Frames left un-iterated stay buffered (so a caller can pause while one is being
 * decided) and come out of `read()` or the next `push()`.
 *
 * After a protocol error the reader is failed for good: every later call rethrows the same error, since the
 * stream position is lost and the connection has to be closed.
 */
export class FrameReader {
  readonly maxPacketSize: number

  private chunks: Buffer[] = []
  /** Index of the first chunk holding unread bytes. */
  private head = 0
  /** Read position inside chunks[head]. */
  private offset = 0
  private buffered = 0
  /** Header of the frame being assembled, parsed once rather than on every chunk. */
  private pending: FixedHeader | null = null
  private failure: Error | null = null

  constructor(options: FrameReaderOptions) {
    const { maxPacketSize } = options
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 2 || maxPacketSize > MAX_PACKET_SIZE_LIMIT) {
      throw new RangeError(`maxPacketSize must be an integer in 2..${MAX_PACKET_SIZE_LIMIT}, got ${maxPacketSize}`)
    }
    this.maxPacketSize = maxPacketSize
  }

  /** Bytes received but not yet returned as frames (non-zero at end of stream means a truncated packet). */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** Appends a chunk (immediately) and returns an iterator over the frames that are now complete. */
  push(chunk: Buffer): IterableIterator<Frame> {
    if (this.failure) throw this.failure
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    return this.frames()
  }

  /** Returns the next complete frame, or undefined when more bytes are needed. */
  read(): Frame | undefined {
    if (this.failure) throw this.failure
    try {
      if (this.pending === null) {
        this.pending = this.peekHeader()
        if (this.pending === null) return undefined
      }
      const header = this.pending
      const total = header.headerLength + header.remainingLength
      if (this.buffered < total) return undefined
      this.pending = null
      return { ...header, bytes: this.take(total) }
    } catch (err) {
      this.fail(err as Error)
      throw err
    }
  }

  private *frames(): IterableIterator<Frame> {
    for (let frame = this.read(); frame !== undefined; frame = this.read()) yield frame
  }

  /** Parses the fixed header from the buffered bytes and enforces the size limit before the body arrives. */
  private peekHeader(): FixedHeader | null {
    if (this.buffered < 2) return null
    const n = Math.min(5, this.buffered)
    const first = this.chunks[this.head] as Buffer
    let view: Buffer
    if (first.length - this.offset >= n) {
      view = first.subarray(this.offset, this.offset + n)
    } else {
      // The header straddles chunks (byte-at-a-time peers): gather at most 5 bytes.
      let copied = 0
      for (let i = this.head, off = this.offset; copied < n; i++, off = 0) {
        const c = this.chunks[i] as Buffer
        copied += c.copy(HEADER_SCRATCH, copied, off, Math.min(c.length, off + n - copied))
      }
      view = HEADER_SCRATCH.subarray(0, n)
    }
    const header = readFixedHeader(view)
    if (header !== null) {
      const total = header.headerLength + header.remainingLength
      if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize)
    }
    return header
  }

  /** Removes `total` bytes from the front; zero-copy when they lie in one chunk. */
  private take(total: number): Buffer {
    const first = this.chunks[this.head] as Buffer
    let out: Buffer
    if (first.length - this.offset >= total) {
      out = first.subarray(this.offset, this.offset + total)
      this.offset += total
      if (this.offset === first.length) {
        this.head++
        this.offset = 0
      }
    } else {
      out = Buffer.allocUnsafe(total)
      let copied = 0
      while (copied < total) {
        const c = this.chunks[this.head] as Buffer
        const end = Math.min(c.length, this.offset + total - copied)
        copied += c.copy(out, copied, this.offset, end)
        if (end === c.length) {
          this.head++
          this.offset = 0
        } else {
          this.offset = end
        }
      }
    }
    this.buffered -= total
    this.compact()
    return out
  }

  /** Drops consumed chunk references; index-based so a long run of tiny chunks stays O(n). */
  private compact(): void {
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
  }

  private fail(err: Error): void {
    this.failure = err
    this.chunks = []
    this.head = 0
    this.offset = 0
    this.buffered = 0
    this.pending = null
  }
}
