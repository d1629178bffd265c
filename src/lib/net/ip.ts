/**
 * IP addresses, written once for the whole proxy: one spelling per address (IPv4-mapped IPv6 becomes IPv4,
 * IPv6 in RFC 5952 form), 16-byte forms, and compiled lists of IPs and CIDRs for trusted peers and GeoIP
 * overrides. Shared ground: imports nothing of the project but the error type.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { FlytrapError } from '../errors.js'

// ------------------------------------------------------------------ IP addresses

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

export function isMapped(b: Uint8Array): boolean {
  return MAPPED_PREFIX.every((v, i) => b[i] === v)
}

export function mapped(v4: Uint8Array): Uint8Array {
  const b = new Uint8Array(16)
  b[10] = 0xff
  b[11] = 0xff
  b.set(v4, 12)
  return b
}

/**
 * An IP address as 16 bytes (IPv4 as IPv4-mapped IPv6), or null when the string is not an IP address.
 * A zone id (`fe80::1%eth0`) is ignored.
 */
export function ipBytes(address: string): Uint8Array | null {
  if (isIPv4(address)) return mapped(Uint8Array.from(address.split('.').map(Number)))
  const s = address.replace(/%.*$/, '')
  if (!isIPv6(s)) return null
  const groups: number[] = []
  const parse = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number]
        out.push((a << 8) | b, (c << 8) | d)
      } else out.push(parseInt(g, 16))
    }
    return out
  }
  const dbl = s.indexOf('::')
  if (dbl < 0) groups.push(...parse(s))
  else {
    const head = parse(s.slice(0, dbl))
    const tail = parse(s.slice(dbl + 2))
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail)
  }
  const b = new Uint8Array(16)
  groups.forEach((g, i) => {
    b[2 * i] = g >> 8
    b[2 * i + 1] = g & 0xff
  })
  return b
}

/** RFC 5952 text form of 16 address bytes (IPv4-mapped ones as ::ffff:a.b.c.d, §5). */
export function formatIp6(b: Uint8Array): string {
  if (isMapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!)
  // Longest run of two or more zero groups (the first one on a tie) becomes "::".
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':')
  if (best < 0) return hex(g)
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`
}

/** Text form of 16 address bytes: IPv4-mapped addresses as dotted IPv4, everything else RFC 5952. */
export function formatIp(b: Uint8Array): string {
  if (isMapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  return formatIp6(b)
}

/**
 * One spelling per address, so bans and counters keyed on it cannot be dodged by writing it differently:
 * IPv4-mapped IPv6 becomes IPv4, IPv6 is RFC 5952 (lower case, shortest), zone ids are dropped.
 * Null when it is not an IP address.
 */
export function normalizeIp(address: string): string | null {
  const b = ipBytes(address)
  return b ? formatIp(b) : null
}

// ------------------------------------------------------------------ trusted peers

/** A compiled list of IPs and CIDRs (IPv4 and IPv6; IPv4 entries also match IPv4-mapped IPv6 peers). */
export interface AddressMatcher {
  readonly entries: readonly string[]
  matches(address: string | undefined | null): boolean
}

/** Compiles "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8" ... Throws a usage error naming a bad entry. */
export function compileAddressList(list: readonly string[]): AddressMatcher {
  const nets = list.map((entry) => {
    const m = /^([^/]+)(?:\/([0-9]{1,3}))?$/.exec(entry.trim())
    const bytes = m ? ipBytes(m[1]!) : null
    const v4 = m ? isIPv4(m[1]!) : false
    const max = v4 ? 32 : 128
    const bits = m?.[2] === undefined ? max : Number(m[2])
    if (!m || !bytes || m[1]!.includes('%') || bits > max) {
      throw new FlytrapError(`invalid address or CIDR in the trusted list: ${JSON.stringify(entry)}`, {
        exit: 'usage',
        suggestions: ['use an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8'],
      })
    }
    return { bytes, prefix: v4 ? 96 + bits : bits }
  })
  return {
    entries: [...list],
    matches(address) {
      if (!address) return false
      const b = ipBytes(address)
      if (!b) return false
      return nets.some((n) => inPrefix(b, n.bytes, n.prefix))
    },
  }
}

function inPrefix(addr: Uint8Array, net: Uint8Array, prefix: number): boolean {
  let i = 0
  for (; prefix >= 8; prefix -= 8, i++) if (addr[i] !== net[i]) return false
  if (prefix === 0) return true
  const mask = (0xff << (8 - prefix)) & 0xff
  return (addr[i]! & mask) === (net[i]! & mask)
}

const compiled = new WeakMap<readonly string[], AddressMatcher>()

/**
 * Whether a peer may send a PROXY header: its address is one of, or inside one of, the trusted entries.
 * A list is compiled once and cached (by identity); pass a compiled matcher to skip even the lookup.
 * Throws (usage error) on an invalid entry: validate the configuration with compileAddressList at start.
 */
export function isTrusted(peerAddress: string | undefined | null, trusted: readonly string[] | AddressMatcher): boolean {
  if (!Array.isArray(trusted)) return (trusted as AddressMatcher).matches(peerAddress)
  const list = trusted as readonly string[]
  let m = compiled.get(list)
  if (!m) {
    m = compileAddressList(list)
    compiled.set(list, m)
  }
  return m.matches(peerAddress)
}
