/**
 * `flytrap proxy start` flag parsing: every unit spelling accepted, every bad value refused as a usage error
 * (exit 2) that names the flag, and the flags → ProxyOptions mapping with DEFAULTS filling the gaps.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULTS } from '../../../src/lib/proxy/options.js'
import { parseBrokerUrl, parseCount, parseHostPort, parseProxyCli, type ProxyCliInput } from '../../../src/lib/proxy/cli-options.js'
import { ExitCode, FlytrapError } from '../../../src/lib/errors.js'

/** Asserts a usage error whose message matches `message`; returns it for further checks. */
function usage(fn: () => unknown, message: RegExp): FlytrapError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof FlytrapError, `expected a FlytrapError, got ${String(caught)}`)
  assert.equal(caught.exit, ExitCode.usage, caught.message)
  assert.match(caught.message, message)
  return caught
}

describe('parseCount', () => {
  for (const [text, n] of [['5', 5], ['10000', 10_000], ['10_000', 10_000], ['10,000', 10_000]] as const) {
    test(`${JSON.stringify(text)} → ${n}`, () => assert.equal(parseCount(text, '--max-connections'), n))
  }
  for (const text of ['', '1.5', '-1', 'ten', '1e3', '0x10']) {
    test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseCount(text, '--max-connections'), /is not a whole number/))
  }
  test('minimum', () => void usage(() => parseCount('0', '--ban-threshold', { min: 1 }), /--ban-threshold 0 is below the minimum of 1/))
})

describe('parseHostPort', () => {
  const ok: Array<[string, string]> = [
    ['0.0.0.0:1883', '0.0.0.0:1883'],
    ['127.0.0.1:0', '127.0.0.1:0'],
    ['[::]:1883', '[::]:1883'],
    ['[::1]:9464', '[::1]:9464'],
    ['localhost:1883', 'localhost:1883'],
    [':1883', '0.0.0.0:1883'],
    ['1883', '0.0.0.0:1883'],
    ['proxy-1.example.com:8883', 'proxy-1.example.com:8883'],
  ]
  for (const [text, norm] of ok) test(`${JSON.stringify(text)} → ${norm}`, () => assert.equal(parseHostPort(text, '--listen'), norm))

  const bad: Array<[string, RegExp]> = [
    ['', /is not host:port/],
    ['0.0.0.0', /is not host:port/],
    ['::1:1883', /is not host:port/], // IPv6 needs brackets
    ['host:port', /is not host:port/],
    ['0.0.0.0:65536', /port 65536 is above 65535/],
    ['[1.2.3.4]:1883', /is not an IPv6 address/],
    ['bad_host!:1883', /is not an IP address or host name/],
    ['0.0.0.0:1883:1', /is not host:port/],
  ]
  for (const [text, message] of bad) test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseHostPort(text, '--listen'), message))
})

describe('parseBrokerUrl', () => {
  const ok: Array<[string, string]> = [
    ['mqtt://127.0.0.1:1884', 'mqtt://127.0.0.1:1884'],
    ['mqtt://mosquitto', 'mqtt://mosquitto:1883'],
    ['tcp://broker:1883', 'mqtt://broker:1883'],
    ['mqtts://broker.internal', 'mqtts://broker.internal:8883'],
    ['ssl://broker:8884', 'mqtts://broker:8884'],
    ['tls://broker', 'mqtts://broker:8883'],
    ['mqtt://[::1]:1884', 'mqtt://[::1]:1884'],
    ['mqtt://127.0.0.1:1884/', 'mqtt://127.0.0.1:1884'],
  ]
  for (const [text, norm] of ok) test(`${text} → ${norm}`, () => assert.equal(parseBrokerUrl(text), norm))

  const bad: Array<[string, RegExp]> = [
    ['127.0.0.1:1884', /not supported|is not a URL/],
    ['localhost', /is not a URL/],
    ['ws://broker:9001', /ws:\/\/ is not supported/],
    ['http://broker', /http:\/\/ is not supported/],
    ['mqtt://user:pw@broker', /must not carry credentials/],
    ['mqtt://broker/topic', /has a path or query/],
    ['mqtt://broker:1883?x=1', /has a path or query/],
  ]
  for (const [text, message] of bad) test(`${text} is refused`, () => void usage(() => parseBrokerUrl(text), message))
})

describe('parseProxyCli', () => {
  const files: Record<string, string> = { 'server.crt': 'CERT', 'server.key': 'KEY', 'ca.crt': 'CA', 'broker-ca.crt': 'BROKERCA' }
  const readFile = (p: string): Buffer => {
    const text = files[p]
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' })
    return Buffer.from(text)
  }
  const parse = (input: Partial<ProxyCliInput>) => parseProxyCli({ broker: 'mqtt://127.0.0.1:1884', ...input }, { readFile })

  test('only --broker: DEFAULTS everywhere, one listener on 0.0.0.0:1883, no warnings', () => {
    const { options, logLevel, warnings } = parse({})
    assert.deepEqual(options.listeners, [{ listen: '0.0.0.0:1883' }])
    assert.deepEqual(options.upstream, { url: 'mqtt://127.0.0.1:1884' })
    assert.equal(options.pollIntervalMs, DEFAULTS.pollIntervalMs)
    assert.equal(options.unregisteredTopics, 'deny')
    assert.equal(options.failOpen, false)
    assert.equal(options.allowLegacyCredentials, false)
    assert.equal(options.usernameFromAddress, false)
    assert.equal(options.maxCredentialLifetimeSec, DEFAULTS.maxCredentialLifetimeSec)
    assert.deepEqual(options.bans, { ...DEFAULTS.bans })
    assert.deepEqual(options.limits, { ...DEFAULTS.limits })
    assert.equal(options.metrics, undefined)
    assert.equal(logLevel, 'info')
    assert.deepEqual(warnings, [])
  })

  test('every flag maps onto its option', () => {
    const { options, logLevel } = parse({
      listen: ['0.0.0.0:1883', '[::]:1883'],
      tlsListen: '0.0.0.0:8883',
      tlsCert: 'server.crt',
      tlsKey: 'server.key',
      tlsClientCa: 'ca.crt',
      tlsRequireClientCert: true,
      broker: 'mqtts://broker:8884',
      brokerCa: 'broker-ca.crt',
      brokerServername: 'broker.internal',
      proxyProtocol: true,
      trustedProxy: ['10.0.0.0/8', 'fd00::/8'],
      metrics: '127.0.0.1:9464',
      pollInterval: '2s',
      unregistered: 'allow',
      failOpen: true,
      allowLegacyCredentials: true,
      usernameFromAddress: true,
      maxCredentialLifetime: '30d',
      banThreshold: '3',
      banWindow: '30s',
      banDuration: '1h',
      banKey: 'a-shared-secret-of-32-characters',
      banReportInterval: '5m',
      maxPacketSize: '256KB',
      connectTimeout: '5s',
      drainTimeout: '10s',
      maxConnections: '1000',
      maxConnectionsPerIp: '10',
      logLevel: 'debug',
    })
    const pp = { proxyProtocol: true, trustedProxies: ['10.0.0.0/8', 'fd00::/8'] }
    assert.deepEqual(options.listeners, [
      { listen: '0.0.0.0:1883', ...pp },
      { listen: '[::]:1883', ...pp },
      { listen: '0.0.0.0:8883', tls: { cert: Buffer.from('CERT'), key: Buffer.from('KEY'), ca: Buffer.from('CA'), requireClientCert: true }, ...pp },
    ])
    assert.deepEqual(options.upstream, { url: 'mqtts://broker:8884', ca: Buffer.from('BROKERCA'), servername: 'broker.internal' })
    assert.equal(options.metrics, '127.0.0.1:9464')
    assert.equal(options.pollIntervalMs, 2_000)
    assert.equal(options.unregisteredTopics, 'allow')
    assert.equal(options.failOpen, true)
    assert.equal(options.allowLegacyCredentials, true)
    assert.equal(options.usernameFromAddress, true)
    assert.equal(options.maxCredentialLifetimeSec, 30 * 86_400)
    assert.deepEqual(options.bans, { threshold: 3, windowMs: 30_000, durationMs: 3_600_000, subjectKey: 'a-shared-secret-of-32-characters', reportIntervalMs: 300_000, reportBatchMax: DEFAULTS.bans.reportBatchMax })
    assert.deepEqual(options.limits, { maxPacketSize: 262_144, connectTimeoutMs: 5_000, maxConnections: 1_000, maxConnectionsPerIp: 10, drainTimeoutMs: 10_000 })
    assert.equal(logLevel, 'debug')
  })

  test('security-weakening flags come back as warnings', () => {
    const { warnings } = parse({ unregistered: 'allow', failOpen: true, allowLegacyCredentials: true, broker: 'mqtts://b', brokerInsecure: true })
    assert.equal(warnings.length, 4)
    for (const flag of ['--unregistered allow', '--fail-open', '--allow-legacy-credentials', '--broker-insecure']) assert.ok(warnings.some((w) => w.startsWith(flag)), flag)
  })

  const bad: Array<[string, Partial<ProxyCliInput>, RegExp]> = [
    ['TLS files without --tls-listen', { tlsCert: 'server.crt', tlsKey: 'server.key' }, /need --tls-listen/],
    ['--tls-listen without a key', { tlsListen: ':8883', tlsCert: 'server.crt' }, /--tls-listen needs --tls-cert and --tls-key/],
    ['--tls-require-client-cert without a CA', { tlsListen: ':8883', tlsCert: 'server.crt', tlsKey: 'server.key', tlsRequireClientCert: true }, /needs --tls-client-ca/],
    ['an unreadable certificate', { tlsListen: ':8883', tlsCert: 'missing.crt', tlsKey: 'server.key' }, /--tls-cert missing\.crt: cannot read the file \(ENOENT\)/],
    ['--trusted-proxy without --proxy-protocol', { trustedProxy: ['10.0.0.0/8'] }, /only makes sense with --proxy-protocol/],
    ['--proxy-protocol without a trusted proxy', { proxyProtocol: true }, /needs at least one --trusted-proxy/],
    ['a bad CIDR', { proxyProtocol: true, trustedProxy: ['10.0.0.0/33'] }, /invalid address or CIDR/],
    ['--broker-ca on a plain broker', { brokerCa: 'broker-ca.crt' }, /apply to an mqtts:\/\/ broker/],
    ['--broker-ca with --broker-insecure', { broker: 'mqtts://b', brokerCa: 'broker-ca.crt', brokerInsecure: true }, /contradict/],
    ['--unregistered maybe', { unregistered: 'maybe' }, /--unregistered "maybe" is not deny or allow/],
    ['--log-level loud', { logLevel: 'loud' }, /--log-level "loud" is not one of debug, info, warn, error/],
    ['a short --ban-key', { banKey: 'secret' }, /--ban-key is shorter than 16 characters/],
    ['the same address twice', { listen: ['0.0.0.0:1883', ':1883'] }, /0\.0\.0\.0:1883 is given twice/],
    ['--max-connections-per-ip above --max-connections', { maxConnections: '10', maxConnectionsPerIp: '20' }, /is above --max-connections 10/],
    ['--poll-interval 10ms', { pollInterval: '10ms' }, /--poll-interval 10ms is below the minimum of 50ms/],
    ['--connect-timeout 10 (ms, by mistake)', { connectTimeout: '10' }, /10 milliseconds, below the minimum of 100ms/],
    ['--ban-window 60', { banWindow: '60' }, /60 milliseconds, below the minimum of 1s/],
    ['--ban-duration forever', { banDuration: 'forever' }, /--ban-duration "forever" is not a duration/],
    ['--ban-threshold 0', { banThreshold: '0' }, /--ban-threshold 0 is below the minimum of 1/],
    ['--max-packet-size 1GB', { maxPacketSize: '1GB' }, /--max-packet-size 1GB is above the maximum of 268435460 bytes/],
    ['--max-packet-size huge', { maxPacketSize: 'huge' }, /is not a size/],
    ['--max-credential-lifetime 10s', { maxCredentialLifetime: '10s' }, /below the minimum of 1m/],
    ['--metrics without a port', { metrics: '127.0.0.1' }, /--metrics "127\.0\.0\.1" is not host:port/],
    ['--broker ws://', { broker: 'ws://b:9001' }, /ws:\/\/ is not supported/],
    ['--rpc-ws over http', { rpcWs: 'http://127.0.0.1:8545' }, /--rpc-ws "http:\/\/127\.0\.0\.1:8545": http:\/\/ is not a WebSocket URL/],
    ['--rpc-ws not a URL', { rpcWs: '127.0.0.1:8545' }, /--rpc-ws "127\.0\.0\.1:8545"/],
    ['--rpc-ws with no host', { rpcWs: 'ws://' }, /--rpc-ws "ws:\/\/" is not a URL|has no host/],
  ]
  for (const [name, input, message] of bad) test(`refused: ${name}`, () => void usage(() => parse(input), message))
})

describe('parseProxyCli: the log subscription (--rpc-ws)', () => {
  const parse = (input: Partial<ProxyCliInput>) => parseProxyCli({ broker: 'mqtt://127.0.0.1:1884', ...input })
  test('none by default, nor with an http --rpc: polling alone', () => {
    assert.equal(parse({}).options.rpcWs, undefined)
    assert.equal(parse({ rpc: 'http://127.0.0.1:8545' }).options.rpcWs, undefined)
  })
  test('--rpc-ws ws:// or wss:// is used as given (over a ws:// --rpc too)', () => {
    assert.equal(parse({ rpcWs: 'ws://127.0.0.1:8545' }).options.rpcWs, 'ws://127.0.0.1:8545/')
    assert.equal(parse({ rpcWs: 'wss://node.example/key', rpc: 'ws://other:8546' }).options.rpcWs, 'wss://node.example/key')
  })
  test('a ws:// --rpc serves the subscription when --rpc-ws is not given', () => {
    assert.equal(parse({ rpc: 'ws://127.0.0.1:8546' }).options.rpcWs, 'ws://127.0.0.1:8546/')
  })
})

describe('parseProxyCli: the proxy identity and several brokers', () => {
  const files: Record<string, string> = { 'broker.pass': 's3cret\n', 'empty.pass': '\n', 'proxy.crt': 'PCERT', 'proxy.key': 'PKEY', 'ca.crt': 'CA' }
  const readFile = (p: string): Buffer => {
    const text = files[p]
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' })
    return Buffer.from(text)
  }
  const parse = (input: Partial<ProxyCliInput>) => parseProxyCli({ broker: 'mqtt://127.0.0.1:1884', ...input }, { readFile })

  test('username and password file: the first line is the password, presented to the broker', () => {
    const { options, warnings } = parse({ brokerUsername: 'flytrap-proxy', brokerPasswordFile: 'broker.pass' })
    assert.deepEqual(options.upstream, { url: 'mqtt://127.0.0.1:1884', username: 'flytrap-proxy', password: Buffer.from('s3cret') })
    assert.match(warnings.join('\n'), /crosses the network in clear/)
  })
  test('--broker-password with --username-from-address needs no username', () => {
    const { options } = parse({ brokerPassword: 'pw', usernameFromAddress: true, broker: 'mqtts://b:8883' })
    assert.deepEqual(options.upstream, { url: 'mqtts://b:8883', password: Buffer.from('pw') })
  })
  test('client certificate for mqtts://; repeatable --broker keeps its order, TLS settings only on mqtts:// brokers', () => {
    const { options } = parse({ broker: ['mqtts://a:8883', 'mqtt://b:1883'], brokerCert: 'proxy.crt', brokerKey: 'proxy.key', brokerCa: 'ca.crt', brokerUsername: 'u' })
    assert.deepEqual(options.upstream, [
      { url: 'mqtts://a:8883', username: 'u', ca: Buffer.from('CA'), cert: Buffer.from('PCERT'), key: Buffer.from('PKEY') },
      { url: 'mqtt://b:1883', username: 'u' },
    ])
  })
  const bad: [Partial<ProxyCliInput>, RegExp][] = [
    [{ brokerPassword: 'pw' }, /--broker-password needs --broker-username/],
    [{ brokerPassword: 'pw', brokerPasswordFile: 'broker.pass', brokerUsername: 'u' }, /are alternatives/],
    [{ brokerPasswordFile: 'empty.pass', brokerUsername: 'u' }, /is empty/],
    [{ brokerPasswordFile: 'missing.pass', brokerUsername: 'u' }, /cannot read the file/],
    [{ brokerCert: 'proxy.crt', brokerKey: 'proxy.key' }, /apply to an mqtts:\/\/ broker/],
    [{ broker: 'mqtts://a:8883', brokerCert: 'proxy.crt' }, /--broker-cert and --broker-key go together/],
    [{ broker: ['mqtt://a:1883', 'mqtt://a:1883'] }, /given twice/],
  ]
  for (const [input, message] of bad) {
    test(`refused: ${JSON.stringify(input)}`, () => assert.throws(() => parse(input), (err: Error) => (assert.match(err.message, message), true)))
  }
})
