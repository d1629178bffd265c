import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { compileAddressList, isTrusted, normalizeIp } from '../../../src/lib/net/ip.js'
import {
  ProxyProtocolError,
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  type ProxyHeader,
  type ProxyProtocolErrorCode,
} from '../../../src/lib/proxy/proxy-protocol.js'
import { FlytrapError } from '../../../src/lib/errors.js'

const hex = (s: string) => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex')
const ascii = (s: string) => Buffer.from(s, 'latin1')
/** The first bytes of an MQTT CONNECT that follow the header on the wire. */
const MQTT = hex('10 0c 00 04 4d 51 54 54')

interface Fixture {
  name: string
  bytes: Buffer
  expect: Exclude<ProxyHeader, { done: false }>
  /** The encoder call that produces exactly these bytes (for the generate/round-trip check). */
  encode?: () => Buffer
}

const V2SIG = '0d0a0d0a000d0a515549540a' // "\r\n\r\n\0\r\nQUIT\n"

const fixtures: Fixture[] = [
  {
    name: 'v1 TCP4',
    bytes: ascii('PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n'),
    expect: {
      done: true,
      consumed: 46,
      source: { address: '192.0.2.1', port: 56324, family: 4 },
      destination: { address: '198.51.100.2', port: 1883, family: 4 },
    },
    encode: () => encodeProxyV1({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 1883 }),
  },
  {
    name: 'v1 TCP6 (addresses normalised to RFC 5952)',
    bytes: ascii('PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::2 65535 0\r\n'),
    expect: {
      done: true,
      consumed: 53,
      source: { address: '2001:db8::1', port: 65535, family: 6 },
      destination: { address: '2001:db8::2', port: 0, family: 6 },
    },
  },
  {
    name: 'v1 TCP6 with an IPv4-mapped source',
    bytes: ascii('PROXY TCP6 ::ffff:203.0.113.7 ::1 4000 1883\r\n'),
    expect: {
      done: true,
      consumed: 45,
      source: { address: '203.0.113.7', port: 4000, family: 4 },
      destination: { address: '::1', port: 1883, family: 6 },
    },
  },
  {
    name: 'v1 TCP6 longest possible header (104 bytes)',
    bytes: ascii(`PROXY TCP6 ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`),
    expect: {
      done: true,
      consumed: 104,
      source: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535, family: 6 },
      destination: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535, family: 6 },
    },
  },
  {
    name: 'v1 UNKNOWN',
    bytes: ascii('PROXY UNKNOWN\r\n'),
    expect: { done: true, consumed: 15 },
    encode: () => encodeProxyV1(null),
  },
  {
    name: 'v1 UNKNOWN with addresses (ignored)',
    bytes: ascii('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'),
    expect: { done: true, consumed: 59 },
  },
  {
    name: 'v2 IPv4 with TLVs',
    bytes: hex(`
      ${V2SIG}          # signature
      21                # version 2, command PROXY
      11                # AF_INET, STREAM
      0023              # 35 bytes follow: 12 address + 6 + 17 TLV
      c0000201          # src 192.0.2.1
      c6336402          # dst 198.51.100.2
      dc04              # sport 56324
      075b              # dport 1883
      04 0003 616263    # PP2_TYPE_NOOP "abc"
      02 000e 62726f6b65722e6578616d706c65  # PP2_TYPE_AUTHORITY "broker.example"
    `),
    expect: {
      done: true,
      consumed: 51,
      source: { address: '192.0.2.1', port: 56324, family: 4 },
      destination: { address: '198.51.100.2', port: 1883, family: 4 },
    },
    encode: () =>
      encodeProxyV2({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 1883 }, {
        tlvs: [
          { type: 0x04, value: ascii('abc') },
          { type: 0x02, value: ascii('broker.example') },
        ],
      }),
  },
  {
    name: 'v2 IPv6 with a TLV',
    bytes: hex(`
      ${V2SIG}
      21                                # version 2, PROXY
      21                                # AF_INET6, STREAM
      0029                              # 36 address + 5 TLV
      20010db8000000000000000000000001  # src 2001:db8::1
      20010db8000000000000000000000002  # dst 2001:db8::2
      c350                              # sport 50000
      22b3                              # dport 8883
      04 0002 0000                      # PP2_TYPE_NOOP
    `),
    expect: {
      done: true,
      consumed: 57,
      source: { address: '2001:db8::1', port: 50000, family: 6 },
      destination: { address: '2001:db8::2', port: 8883, family: 6 },
    },
    encode: () => encodeProxyV2({ address: '2001:db8::1', port: 50000 }, { address: '2001:db8::2', port: 8883 }, { tlvs: [{ type: 4, value: Buffer.alloc(2) }] }),
  },
  {
    name: 'v2 IPv6 carrying an IPv4-mapped source',
    bytes: hex(`
      ${V2SIG} 21 21 0024
      00000000000000000000ffffcb007107  # src ::ffff:203.0.113.7
      00000000000000000000000000000001  # dst ::1
      0fa0 075b                         # 4000 -> 1883
    `),
    expect: {
      done: true,
      consumed: 52,
      source: { address: '203.0.113.7', port: 4000, family: 4 },
      destination: { address: '::1', port: 1883, family: 6 },
    },
  },
  {
    name: 'v2 LOCAL (health check) without addresses',
    bytes: hex(`${V2SIG} 20 00 0000`),
    expect: { done: true, consumed: 16, local: true },
    encode: () => encodeProxyV2(null),
  },
  {
    name: 'v2 LOCAL with an address block and TLVs (ignored)',
    bytes: hex(`
      ${V2SIG}
      20                        # version 2, LOCAL
      11                        # AF_INET, STREAM (to be ignored)
      0012                      # 12 address + 6 TLV
      0a000001 0a000002 0001 0002
      04 0003 000000            # PP2_TYPE_NOOP
    `),
    expect: { done: true, consumed: 34, local: true },
  },
  {
    name: 'v2 PROXY with AF_UNSPEC (use the socket peer)',
    bytes: hex(`${V2SIG} 21 00 0003 04 0000`),
    expect: { done: true, consumed: 19 },
  },
  {
    name: 'v2 AF_UNIX (use the socket peer)',
    bytes: Buffer.concat([hex(`${V2SIG} 21 31 00d8`), Buffer.alloc(216)]),
    expect: { done: true, consumed: 232 },
  },
  {
    name: 'v2 truncated TLV inside the declared length (skipped)',
    bytes: hex(`
      ${V2SIG} 21 11
      000f                      # 12 address + 3 bytes of a TLV that claims 255
      7f000001 7f000001 1000 0001
      04 00ff
    `),
    expect: {
      done: true,
      consumed: 31,
      source: { address: '127.0.0.1', port: 4096, family: 4 },
      destination: { address: '127.0.0.1', port: 1, family: 4 },
    },
  },
]

describe('parseProxyHeader: fixtures', () => {
  for (const f of fixtures) {
    test(f.name, () => {
      assert.equal(f.bytes.length, f.expect.consumed, 'fixture length')
      const wire = Buffer.concat([f.bytes, MQTT])
      assert.deepEqual(parseProxyHeader(wire), f.expect)
      assert.deepEqual(wire.subarray(f.expect.consumed), MQTT, 'the MQTT bytes follow the header')
      if (f.encode) assert.equal(f.encode().toString('hex'), f.bytes.toString('hex'), 'encoder output')
    })
    test(`${f.name}: split at every byte`, () => {
      const wire = Buffer.concat([f.bytes, MQTT])
      for (let k = 0; k <= wire.length; k++) {
        const r = parseProxyHeader(wire.subarray(0, k))
        if (k < f.expect.consumed) assert.deepEqual(r, { done: false }, `at ${k} bytes`)
        else assert.deepEqual(r, f.expect, `at ${k} bytes`)
      }
    })
  }

  test('an empty buffer needs more bytes', () => {
    assert.deepEqual(parseProxyHeader(Buffer.alloc(0)), { done: false })
  })
})

function throwsCode(buf: Buffer, code: ProxyProtocolErrorCode): void {
  assert.throws(
    () => parseProxyHeader(buf),
    (err: unknown) => {
      assert.ok(err instanceof ProxyProtocolError, String(err))
      assert.equal(err.code, code, err.message)
      return true
    },
  )
}

describe('parseProxyHeader: malformed', () => {
  const cases: [string, Buffer, ProxyProtocolErrorCode][] = [
    ['an MQTT CONNECT without a header', MQTT, 'bad_signature'],
    ['HTTP', ascii('GET /metrics HTTP/1.1\r\n'), 'bad_signature'],
    ['lower-case proxy', ascii('proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), 'bad_signature'],
    ['"PROXZ" (fails at the fifth byte)', ascii('PROXZ'), 'bad_signature'],
    ['"PROXY" without the space', ascii('PROXY\r\n'), 'bad_signature'],
    ['v2 signature with a wrong byte', hex('0d0a0d0a000d0a515549540b'), 'bad_signature'],
    ['v2 signature wrong early (fails at the second byte)', hex('0d0d'), 'bad_signature'],
    ['v1 without CRLF in 107 bytes', ascii(`PROXY UNKNOWN ${'x'.repeat(93)}`), 'v1_too_long'],
    ['v1 with CRLF at 108 bytes', ascii(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`), 'v1_too_long'],
    ['v1 unknown protocol', ascii('PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n'), 'v1_malformed'],
    ['v1 missing port', ascii('PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n'), 'v1_malformed'],
    ['v1 double space', ascii('PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n'), 'v1_malformed'],
    ['v1 trailing space', ascii('PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n'), 'v1_malformed'],
    ['v1 bad IPv4', ascii('PROXY TCP4 256.1.1.1 1.2.3.4 1 2\r\n'), 'v1_malformed'],
    ['v1 IPv4 with a leading zero', ascii('PROXY TCP4 01.1.1.1 1.2.3.4 1 2\r\n'), 'v1_malformed'],
    ['v1 TCP4 with IPv6 addresses', ascii('PROXY TCP4 ::1 ::1 1 2\r\n'), 'v1_malformed'],
    ['v1 TCP6 with IPv4 addresses', ascii('PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n'), 'v1_malformed'],
    ['v1 TCP6 with a zone id', ascii('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'v1_malformed'],
    ['v1 port 65536', ascii('PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n'), 'v1_malformed'],
    ['v1 port with a leading zero', ascii('PROXY TCP4 1.2.3.4 1.2.3.4 01883 2\r\n'), 'v1_malformed'],
    ['v1 negative port', ascii('PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n'), 'v1_malformed'],
    ['v1 CR without LF', ascii('PROXY UNKNOWN\rX'), 'v1_malformed'],
    ['v1 bare LF', ascii('PROXY UNKNOWN\n'), 'v1_malformed'],
    ['v1 NUL byte (fails before CRLF arrives)', ascii('PROXY TCP4 1.2\x00'), 'v1_malformed'],
    ['v2 version 1 (fails at byte 13)', hex(`${V2SIG} 11`), 'v2_version'],
    ['v2 version 3', hex(`${V2SIG} 31 11 000c`), 'v2_version'],
    ['v2 command 2', hex(`${V2SIG} 22`), 'v2_command'],
    ['v2 family 4 (fails at byte 14)', hex(`${V2SIG} 21 41`), 'v2_family'],
    ['v2 family 15', hex(`${V2SIG} 21 f1 0000`), 'v2_family'],
    ['v2 transport 3', hex(`${V2SIG} 21 13`), 'v2_protocol'],
    ['v2 datagram', hex(`${V2SIG} 21 12 000c`), 'v2_protocol'],
    ['v2 AF_INET with a 4-byte block (fails before it arrives)', hex(`${V2SIG} 21 11 0004`), 'v2_length'],
    ['v2 AF_INET6 with a 12-byte block', hex(`${V2SIG} 21 21 000c`), 'v2_length'],
    ['v2 AF_UNIX with a short block', hex(`${V2SIG} 21 31 0010`), 'v2_length'],
  ]
  for (const [name, buf, code] of cases) test(name, () => throwsCode(buf, code))

  test('a longer prefix of the 108-byte line also fails', () => {
    throwsCode(ascii(`PROXY UNKNOWN ${'x'.repeat(92)}\r`), 'v1_too_long')
  })
  test('a valid v1 prefix short of 107 bytes waits for more', () => {
    assert.deepEqual(parseProxyHeader(ascii(`PROXY UNKNOWN ${'x'.repeat(92)}`)), { done: false })
  })
  test('v2 header may declare up to 65535 bytes and waits for them', () => {
    const head = hex(`${V2SIG} 21 11 ffff`)
    assert.deepEqual(parseProxyHeader(Buffer.concat([head, Buffer.alloc(65534)])), { done: false })
    const r = parseProxyHeader(Buffer.concat([head, Buffer.alloc(65535)]))
    assert.equal(r.done && r.consumed, 16 + 65535)
  })
})

describe('encoders', () => {
  test('v1 and v2 round-trip', () => {
    const pairs: [string, number, string, number, string][] = [
      ['10.1.2.3', 1, '10.9.9.9', 65535, '10.1.2.3'],
      ['2001:db8::42', 443, '2001:db8::1', 1883, '2001:db8::42'],
      ['::ffff:10.0.0.1', 5, '::1', 6, '10.0.0.1'],
    ]
    for (const [sa, sp, da, dp, expected] of pairs) {
      for (const enc of [encodeProxyV1, encodeProxyV2]) {
        const r = parseProxyHeader(enc({ address: sa, port: sp }, { address: da, port: dp }))
        assert.ok(r.done)
        assert.equal(r.source?.address, expected)
        assert.equal(r.source?.port, sp)
        assert.equal(r.destination?.port, dp)
      }
    }
  })
  test('mixed families are sent as IPv6 with the IPv4 side mapped', () => {
    const b = encodeProxyV1({ address: '192.0.2.1', port: 1 }, { address: '2001:db8::1', port: 2 })
    assert.equal(b.toString('latin1'), 'PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1 2\r\n')
    const v2 = encodeProxyV2({ address: '192.0.2.1', port: 1 }, { address: '2001:db8::1', port: 2 })
    assert.equal(v2[13], 0x21)
    assert.deepEqual(parseProxyHeader(v2), {
      done: true,
      consumed: 52,
      source: { address: '192.0.2.1', port: 1, family: 4 },
      destination: { address: '2001:db8::1', port: 2, family: 6 },
    })
  })
  test('bad input is refused', () => {
    assert.throws(() => encodeProxyV1({ address: 'example.com', port: 1 }, { address: '::1', port: 1 }), RangeError)
    assert.throws(() => encodeProxyV2({ address: '::1', port: 70000 }, { address: '::1', port: 1 }), RangeError)
  })
})

describe('normalizeIp', () => {
  const cases: [string, string | null][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['1::', '1::'],
    ['not-an-ip', null],
    ['1.2.3.256', null],
    ['', null],
  ]
  for (const [input, out] of cases) test(`${JSON.stringify(input)} -> ${String(out)}`, () => assert.equal(normalizeIp(input), out))
})

describe('isTrusted', () => {
  const list = ['127.0.0.0/8', '10.1.2.3', '192.168.0.0/17', '::1', 'fd00::/8', '2001:db8:abcd::/48']
  const cases: [string | undefined, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:2', true],
    ['128.0.0.1', false],
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['10.1.2.4', false],
    ['192.168.127.255', true],
    ['192.168.128.0', false],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::2', false],
    ['fd12:3456::1', true],
    ['fc00::1', false],
    ['2001:db8:abcd:ffff::1', true],
    ['2001:db8:abce::1', false],
    ['::127.0.0.1', false], // IPv4-compatible, not IPv4-mapped
    [undefined, false],
    ['', false],
    ['garbage', false],
  ]
  for (const [peer, expected] of cases) test(`${String(peer)} -> ${expected}`, () => assert.equal(isTrusted(peer, list), expected))

  test('an empty list trusts nobody; /0 trusts everybody of the family', () => {
    assert.equal(isTrusted('127.0.0.1', []), false)
    assert.equal(isTrusted('203.0.113.9', ['0.0.0.0/0']), true)
    assert.equal(isTrusted('::ffff:203.0.113.9', ['0.0.0.0/0']), true)
    assert.equal(isTrusted('2001:db8::1', ['0.0.0.0/0']), false)
    assert.equal(isTrusted('2001:db8::1', ['::/0']), true)
  })
  test('a compiled matcher answers the same', () => {
    const m = compileAddressList(list)
    for (const [peer, expected] of cases) assert.equal(isTrusted(peer, m), expected, String(peer))
  })
  test('host bits in a CIDR are masked', () => {
    assert.equal(isTrusted('10.200.0.1', ['10.1.2.3/8']), true)
  })
  for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/', '10.0.0.0/8/8', 'fe80::1%eth0', '1.2.3.4/-1']) {
    test(`invalid entry ${JSON.stringify(bad)} is a usage error`, () => {
      assert.throws(
        () => compileAddressList([bad]),
        (err: unknown) => err instanceof FlytrapError && err.exit === 2 && err.message.includes(JSON.stringify(bad)),
      )
    })
  }
})
