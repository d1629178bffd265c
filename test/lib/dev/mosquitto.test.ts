/**
 * The dev broker launcher against the real Debian mosquitto: a plain listener on a free port, a TLS listener
 * with certificates from makeTestCA (server-only and mutual TLS), and the errors a user sees when mosquitto or
 * openssl is missing. Skipped (with a reason) when mosquitto is not installed.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { makeTestCA, type TestCA } from '../../../src/lib/dev/certs.js'
import { findMosquitto, mosquittoAvailable, mosquittoConfig, startMosquitto, type MosquittoHandle } from '../../../src/lib/dev/mosquitto.js'
import { freePort, portIsFree } from '../../../src/lib/dev/ports.js'
import { FlytrapError, ExitCode } from '../../../src/lib/errors.js'

const skip = mosquittoAvailable() ? false : 'mosquitto is not installed (apt-get install mosquitto)'

async function connectClient(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts })
  return client
}

/** Subscribes, publishes one message with a second client and returns what the subscriber received. */
async function roundTrip(url: string, opts: IClientOptions = {}): Promise<{ topic: string; payload: string }> {
  const sub = await connectClient(url, { ...opts, clientId: `sub-${process.pid}-${Math.random()}` })
  const pub = await connectClient(url, { ...opts, clientId: `pub-${process.pid}-${Math.random()}` })
  try {
    const received = new Promise<{ topic: string; payload: string }>((resolve) => sub.once('message', (topic, payload) => resolve({ topic, payload: payload.toString() })))
    await sub.subscribeAsync('flytrap/test/#', { qos: 1 })
    await pub.publishAsync('flytrap/test/hello', 'hi there', { qos: 1 })
    return await withTimeout(received, 5_000, 'no message arrived')
  } finally {
    await Promise.all([sub.endAsync(true), pub.endAsync(true)])
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]).finally(() => clearTimeout(timer))
}

describe('freePort / portIsFree', () => {
  test('a free port can be bound, and reports taken while something listens on it', async () => {
    const port = await freePort()
    assert.ok(port > 0 && port < 65_536)
    assert.equal(await portIsFree(port), true)
    const { createServer } = await import('node:net')
    const server = createServer()
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
    try {
      assert.equal(await portIsFree(port), false)
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})

describe('startMosquitto', { skip }, () => {
  let broker: MosquittoHandle

  before(async () => {
    broker = await startMosquitto()
  })
  after(async () => broker?.stop())

  test('listens on a free loopback port and relays a message between two MQTT.js clients', async () => {
    assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`)
    assert.equal(broker.tlsPort, undefined)
    assert.deepEqual(await roundTrip(broker.url), { topic: 'flytrap/test/hello', payload: 'hi there' })
  })

  test('two brokers side by side get different ports', async () => {
    const second = await startMosquitto()
    try {
      assert.notEqual(second.port, broker.port)
      assert.deepEqual(await roundTrip(second.url, { protocolVersion: 5 }), { topic: 'flytrap/test/hello', payload: 'hi there' })
    } finally {
      await second.stop()
    }
  })

  test('stop() ends the process and frees the port; a second stop() is harmless', async () => {
    const b = await startMosquitto()
    await b.stop()
    await b.stop()
    assert.ok(b.process.exitCode !== null || b.process.signalCode !== null)
    assert.equal(await portIsFree(b.port), true)
  })

  test('an explicit port that is taken is a config error naming the cause', async () => {
    await assert.rejects(startMosquitto({ port: broker.port }), (err: unknown) => {
      assert.ok(err instanceof FlytrapError)
      assert.equal(err.exit, ExitCode.config)
      assert.match(err.message, /address already in use/i)
      return true
    })
  })

  test('a bad configExtra line fails fast with mosquitto’s own error, not a timeout', async () => {
    await assert.rejects(startMosquitto({ configExtra: ['no_such_option 1'], timeoutMs: 8_000 }), (err: unknown) => {
      assert.ok(err instanceof FlytrapError)
      assert.match(err.message, /exited during start-up/)
      assert.match(err.message, /no_such_option|Unknown configuration/i)
      return true
    })
  })

  test('log lines reach the log callback when asked for', async () => {
    const lines: string[] = []
    const b = await startMosquitto({ log: (l) => lines.push(l) })
    await b.stop()
    assert.ok(lines.some((l) => /New connection from 127\.0\.0\.1/.test(l)), lines.join('\n')) // our readiness probe, logged at notice
  })
})

describe('startMosquitto with TLS', { skip }, () => {
  let dir: string
  let ca: TestCA
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flytrap-certs-'))
    ca = await makeTestCA(dir)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('makeTestCA writes PEM files for a CA, a server and a client', () => {
    for (const pem of [ca.pem.ca, ca.pem.serverCert, ca.pem.clientCert]) assert.match(pem, /^-----BEGIN CERTIFICATE-----/)
    for (const pem of [ca.pem.serverKey, ca.pem.clientKey]) assert.match(pem, /-----BEGIN (EC )?PRIVATE KEY-----/)
  })

  test('a TLS listener next to the plain one; clients verify the server against the test CA', async () => {
    const broker = await startMosquitto({ tls: { cert: ca.serverCert, key: ca.serverKey } })
    try {
      assert.ok(broker.tlsPort && broker.tlsPort !== broker.port)
      assert.equal(broker.tlsUrl, `mqtts://127.0.0.1:${broker.tlsPort}`)
      assert.deepEqual(await roundTrip(broker.tlsUrl!, { ca: ca.pem.ca, rejectUnauthorized: true }), { topic: 'flytrap/test/hello', payload: 'hi there' })
      // The SAN covers localhost as well as 127.0.0.1.
      assert.deepEqual(await roundTrip(`mqtts://localhost:${broker.tlsPort}`, { ca: ca.pem.ca, rejectUnauthorized: true }), { topic: 'flytrap/test/hello', payload: 'hi there' })
      // Without the CA the certificate is not trusted.
      await assert.rejects(connectClient(broker.tlsUrl!, { rejectUnauthorized: true }), /self[- ]signed|unable to verify|certificate/i)
      // The plain listener still works.
      assert.deepEqual(await roundTrip(broker.url), { topic: 'flytrap/test/hello', payload: 'hi there' })
    } finally {
      await broker.stop()
    }
  })

  test('requireClientCert: the client certificate is needed', async () => {
    const broker = await startMosquitto({ tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert, requireClientCert: true } })
    try {
      const mutual = { ca: ca.pem.ca, cert: ca.pem.clientCert, key: ca.pem.clientKey, rejectUnauthorized: true }
      assert.deepEqual(await roundTrip(broker.tlsUrl!, mutual), { topic: 'flytrap/test/hello', payload: 'hi there' })
      await assert.rejects(connectClient(broker.tlsUrl!, { ca: ca.pem.ca, rejectUnauthorized: true, connectTimeout: 3_000 }))
    } finally {
      await broker.stop()
    }
  })

  test('a missing certificate file is reported from mosquitto’s own error', async () => {
    await assert.rejects(startMosquitto({ tls: { cert: join(dir, 'nope.crt'), key: ca.serverKey } }), (err: unknown) => {
      assert.ok(err instanceof FlytrapError)
      assert.match(err.message, /nope\.crt/)
      return true
    })
  })
})

describe('missing binaries', () => {
  test('no mosquitto on PATH (and no fallbacks): a config error suggesting apt-get or --broker', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'flytrap-nopath-'))
    try {
      const lookup = { searchPath: empty, fallbacks: [] }
      assert.equal(findMosquitto(lookup), undefined)
      assert.equal(mosquittoAvailable(lookup), false)
      await assert.rejects(startMosquitto(lookup), (err: unknown) => {
        assert.ok(err instanceof FlytrapError)
        assert.equal(err.exit, ExitCode.config)
        assert.match(err.message, /mosquitto is not installed/)
        assert.ok(err.suggestions.some((s) => s.includes('apt-get install mosquitto')))
        assert.ok(err.suggestions.some((s) => s.includes('--broker')))
        return true
      })
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  test('an explicit binary that does not exist is the same config error', async () => {
    await assert.rejects(startMosquitto({ binary: '/nonexistent/mosquitto' }), (err: unknown) => err instanceof FlytrapError && err.exit === ExitCode.config && /\/nonexistent\/mosquitto/.test(err.message))
  })

  test('no openssl: makeTestCA says so and how to install it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flytrap-certs-'))
    try {
      await assert.rejects(makeTestCA(dir, { openssl: '/nonexistent/openssl' }), (err: unknown) => {
        assert.ok(err instanceof FlytrapError)
        assert.equal(err.exit, ExitCode.config)
        assert.ok(err.suggestions.some((s) => s.includes('apt-get install openssl')))
        return true
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('mosquittoConfig', () => {
  test('loopback listener, anonymous, no persistence, errors-only logging by default', () => {
    const conf = mosquittoConfig({ host: '127.0.0.1', port: 1884, verbose: false })
    const lines = conf.split('\n')
    for (const l of ['listener 1884 127.0.0.1', 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error']) assert.ok(lines.includes(l), l)
    assert.ok(!lines.includes('log_type notice'))
    assert.ok(!lines.some((l) => l.startsWith('certfile')))
  })

  test('TLS listener, persistence and extra lines', () => {
    const conf = mosquittoConfig({ host: '127.0.0.1', port: 1, tlsPort: 2, tls: { cert: '/c/s.crt', key: '/c/s.key', ca: '/c/ca.crt', requireClientCert: true }, dataDir: '/data', verbose: true, configExtra: ['max_inflight_messages 5'] })
    const tlsPart = conf.slice(conf.indexOf('listener 2 127.0.0.1'))
    for (const l of ['certfile /c/s.crt', 'keyfile /c/s.key', 'cafile /c/ca.crt', 'require_certificate true']) assert.ok(tlsPart.includes(l), l)
    assert.match(conf, /persistence true\npersistence_location \/data\//)
    assert.match(conf, /log_type notice/)
    assert.ok(conf.trimEnd().endsWith('max_inflight_messages 5'))
  })
})
