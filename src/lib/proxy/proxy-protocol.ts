/**
 * PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy, nginx, AWS NLB and friends at the
 * start of a TCP stream (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). Address helpers
 * (normalisation, trusted-peer CIDR matching) are in src/lib/net/ip.ts.
 *
 * The parser is incremental: call it with everything received so far; it answers `{ done: false }` until the
 * header is complete, and throws a ProxyProtocolError as soon as the bytes cannot be a valid header (so a
 * peer cannot hold a connection open by dribbling garbage). A header is only honoured from a trusted peer:
 * the caller checks `isTrusted(socket.remoteAddress, trustedProxies)` before parsing.
 *
 * Source addresses are returned normalised: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address
 * with family 4, IPv6 is in RFC 5952 form. `source` is absent for v2 LOCAL (health checks from the proxy
 * itself: `local: true`), v1 UNKNOWN, and v2 UNSPEC/UNIX families: use the socket's peer then.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net'
import { formatIp, formatIp6, ipBytes, isMapped, mapped, normalizeIp } from '../net/ip.js'

export interface ProxyEndpoint {
  address: string
  port: number
}

export interface ProxySource extends ProxyEndpoint {
  family: 4 | 6
}

export type ProxyHeader =
  | { done: false }
  | { done: true; consumed: number; source?: ProxySource; destination?: ProxySource; local?: boolean }

export type ProxyProtocolErrorCode =
  | 'bad_signature'
  | 'v1_too_long'
  | 'v1_malformed'
  | 'v2_version'
  | 'v2_command'
  | 'v2_family'
  | 'v2_protocol'
  | 'v2_length'

/** A header that is not (and cannot become) valid. `code` is stable and fit for a metric label. */
export class ProxyProtocolError extends Error {
  readonly code: ProxyProtocolErrorCode

  constructor(code: ProxyProtocolErrorCode, message: string) {
    super(`PROXY protocol: ${message}`)
    this.name = 'ProxyProtocolError'
    this.code = code
  }
}

/** Longest v1 header, CRLF included (spec §2.1). */
export const V1_MAX_LENGTH = 107
const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V2_HEADER = 16

const AF_UNSPEC = 0
const AF_INET = 1
const AF_INET6 = 2
const AF_UNIX = 3
const PROTO_UNSPEC = 0
const PROTO_STREAM = 1
const PROTO_DGRAM = 2
/** Address block sizes per family (v2 §2.2). */
const ADDR_LEN: Record<number, number> = { [AF_UNSPEC]: 0, [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 }

/** Parses a PROXY v1 or v2 header at the start of `buf` (everything received so far). */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { done: false }
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf)
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf)
  throw new ProxyProtocolError('bad_signature', 'the stream does not start with a PROXY header')
}

function matchesPrefix(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length)
  return buf.subarray(0, n).equals(sig.subarray(0, n))
}

function parseV1(buf: Buffer): ProxyHeader {
  if (!matchesPrefix(buf, V1_PREFIX)) throw new ProxyProtocolError('bad_signature', 'the stream does not start with a PROXY header')
  const window = Math.min(buf.length, V1_MAX_LENGTH)
  let end = -1
  for (let i = V1_PREFIX.length; i < window; i++) {
    const c = buf[i]!
    if (c === 0x0d) {
      if (i + 2 > V1_MAX_LENGTH) throw new ProxyProtocolError('v1_too_long', `no CRLF within ${V1_MAX_LENGTH} bytes`)
      if (i + 1 >= buf.length) return { done: false }
      if (buf[i + 1] !== 0x0a) throw new ProxyProtocolError('v1_malformed', 'CR not followed by LF')
      end = i
      break
    }
    // Printable ASCII only: fail on garbage now rather than after 107 bytes.
    if (c < 0x20 || c > 0x7e) throw new ProxyProtocolError('v1_malformed', `unexpected byte 0x${c.toString(16).padStart(2, '0')} at ${i}`)
  }
  if (end < 0) {
    if (buf.length >= V1_MAX_LENGTH) throw new ProxyProtocolError('v1_too_long', `no CRLF within ${V1_MAX_LENGTH} bytes`)
    return { done: false }
  }
  const consumed = end + 2
  const parts = buf.toString('latin1', V1_PREFIX.length, end).split(' ')
  const proto = parts[0]
  // UNKNOWN: the rest of the line is to be ignored (spec §2.1).
  if (proto === 'UNKNOWN') return { done: true, consumed }
  if (proto !== 'TCP4' && proto !== 'TCP6') throw new ProxyProtocolError('v1_malformed', `unknown protocol ${JSON.stringify(proto)}`)
  if (parts.length !== 5) throw new ProxyProtocolError('v1_malformed', 'expected "PROXY <proto> <src> <dst> <sport> <dport>"')
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string]
  const valid = proto === 'TCP4' ? isIPv4 : (s: string) => isIPv6(s) && !s.includes('%')
  if (!valid(src) || !valid(dst)) throw new ProxyProtocolError('v1_malformed', `invalid ${proto} address`)
  const source = endpoint(src, v1Port(sport))
  const destination = endpoint(dst, v1Port(dport))
  return { done: true, consumed, source, destination }
}

function v1Port(s: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s) || Number(s) > 65535) throw new ProxyProtocolError('v1_malformed', `invalid port ${JSON.stringify(s)}`)
  return Number(s)
}

function endpoint(address: string, port: number): ProxySource {
  const n = normalizeIp(address)!
  return { address: n, port, family: isIPv4(n) ? 4 : 6 }
}

function parseV2(buf: Buffer): ProxyHeader {
  if (!matchesPrefix(buf, V2_SIGNATURE)) throw new ProxyProtocolError('bad_signature', 'the stream does not start with a PROXY header')
  if (buf.length > 12) {
    const verCmd = buf[12]!
    if (verCmd >> 4 !== 2) throw new ProxyProtocolError('v2_version', `unsupported version ${verCmd >> 4}`)
    if ((verCmd & 0x0f) > 1) throw new ProxyProtocolError('v2_command', `unknown command ${verCmd & 0x0f}`)
  }
  if (buf.length > 13) {
    const fam = buf[13]!
    if (fam >> 4 > AF_UNIX) throw new ProxyProtocolError('v2_family', `unknown address family ${fam >> 4}`)
    if ((fam & 0x0f) > PROTO_DGRAM) throw new ProxyProtocolError('v2_protocol', `unknown transport protocol ${fam & 0x0f}`)
  }
  if (buf.length < V2_HEADER) return { done: false }
  const local = (buf[12]! & 0x0f) === 0
  const af = buf[13]! >> 4
  const proto = buf[13]! & 0x0f
  const len = buf.readUInt16BE(14)
  // LOCAL: addresses (if any) are to be ignored, the length still counts.
  if (!local) {
    if (len < ADDR_LEN[af]!) throw new ProxyProtocolError('v2_length', `address block of ${len} bytes is too short for family ${af}`)
    if (proto === PROTO_DGRAM) throw new ProxyProtocolError('v2_protocol', 'a datagram header on a stream connection')
  }
  const consumed = V2_HEADER + len
  if (buf.length < consumed) return { done: false }
  // Anything after the address block is TLVs: none is needed here, so they are skipped whole (even when
  // they are truncated or malformed), which is what the spec allows a receiver to do.
  if (local) return { done: true, consumed, local: true }
  if (proto !== PROTO_STREAM || (af !== AF_INET && af !== AF_INET6)) return { done: true, consumed }
  const a = V2_HEADER
  if (af === AF_INET) {
    return {
      done: true,
      consumed,
      source: fromBytes(mapped(buf.subarray(a, a + 4)), buf.readUInt16BE(a + 8)),
      destination: fromBytes(mapped(buf.subarray(a + 4, a + 8)), buf.readUInt16BE(a + 10)),
    }
  }
  return {
    done: true,
    consumed,
    source: fromBytes(buf.subarray(a, a + 16), buf.readUInt16BE(a + 32)),
    destination: fromBytes(buf.subarray(a + 16, a + 32), buf.readUInt16BE(a + 34)),
  }
}

function fromBytes(bytes: Uint8Array, port: number): ProxySource {
  return { address: formatIp(bytes), port, family: isMapped(bytes) ? 4 : 6 }
}

// ------------------------------------------------------------------ encoders (tests, bench, tooling)

function family(e: ProxyEndpoint): 4 | 6 {
  const f = isIP(e.address)
  if (f === 0) throw new RangeError(`not an IP address: ${e.address}`)
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) throw new RangeError(`invalid port ${e.port}`)
  return f as 4 | 6
}

/**
 * A v1 header. `src === null` gives `PROXY UNKNOWN`. Mixed families are sent as TCP6 with the IPv4 side
 * IPv4-mapped.
 */
export function encodeProxyV1(src: ProxyEndpoint | null, dst?: ProxyEndpoint | null): Buffer {
  if (!src || !dst) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const v4 = family(src) === 4 && family(dst) === 4
  const addr = (e: ProxyEndpoint) => (v4 ? e.address : formatIp6(ipBytes(e.address)!))
  return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${addr(src)} ${addr(dst)} ${src.port} ${dst.port}\r\n`, 'latin1')
}

export interface ProxyTlv {
  type: number
  value: Buffer
}

/**
 * A v2 header (PROXY command, TCP). `src === null` gives a LOCAL header with no addresses. TLVs are
 * appended after the address block as given.
 */
export function encodeProxyV2(src: ProxyEndpoint | null, dst?: ProxyEndpoint | null, opts: { tlvs?: ProxyTlv[] } = {}): Buffer {
  const tlvs = Buffer.concat(
    (opts.tlvs ?? []).map((t) => {
      const h = Buffer.alloc(3)
      h[0] = t.type
      h.writeUInt16BE(t.value.length, 1)
      return Buffer.concat([h, t.value])
    }),
  )
  let fam = (AF_UNSPEC << 4) | PROTO_UNSPEC
  let addrs = Buffer.alloc(0)
  if (src && dst) {
    const v4 = family(src) === 4 && family(dst) === 4
    fam = ((v4 ? AF_INET : AF_INET6) << 4) | PROTO_STREAM
    const bytes = (e: ProxyEndpoint) => {
      const b = ipBytes(e.address)!
      return Buffer.from(v4 ? b.subarray(12) : b)
    }
    const ports = Buffer.alloc(4)
    ports.writeUInt16BE(src.port, 0)
    ports.writeUInt16BE(dst.port, 2)
    addrs = Buffer.concat([bytes(src), bytes(dst), ports])
  }
  const len = addrs.length + tlvs.length
  if (len > 0xffff) throw new RangeError('PROXY v2 header longer than 65535 bytes')
  const head = Buffer.alloc(V2_HEADER)
  V2_SIGNATURE.copy(head)
  head[12] = 0x20 | (src && dst ? 1 : 0)
  head[13] = fam
  head.writeUInt16BE(len, 14)
  return Buffer.concat([head, addrs, tlvs])
}
