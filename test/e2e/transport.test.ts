/**
 * Transports end to end: TLS towards clients (with and without client certificates), TLS towards the broker
 * (verified against a CA, against the system CAs, or not verified), and IPv6 clients.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeTestCA, type TestCA } from '../../src/lib/dev/certs.js'
import { DEFAULTS } from '../../src/lib/proxy/options.js'
import type { ProxyHandle } from '../../src/lib/proxy/server.js'
import { e2eFixture, type E2E } from '../helpers/stack.js'
import { inbox, publish, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'
import { BOTH, registerTopics } from '../helpers/topics.js'

const TOPIC = 'sensors/temp'

/** A subscriber and a publisher (same key, separate client ids) through `url`; the message must arrive. */
async function roundTrip(e: E2E, url: string, extra: Parameters<E2E['connect']>[0]['extra'] = {}, payload = `m-${Math.random()}`): Promise<void> {
  const sub = await e.connect({ key: 1, url, extra })
  const pub = await e.connect({ key: 1, url, extra })
  try {
    const box = inbox(sub)
    assert.deepEqual(await subscribe(sub, TOPIC), [1])
    await publish(pub, TOPIC, payload)
    await waitFor(() => box.has(TOPIC, payload), 5_000, `delivery of ${payload} via ${url}`)
  } finally {
    pub.end(true)
    sub.end(true)
  }
}

/** Records session-close events of one proxy. */
function closes(p: ProxyHandle): { reason?: string; ip: string }[] {
  const out: { reason?: string; ip: string }[] = []
  p.on('session-close', (ev) => out.push(ev))
  return out
}

describe('transport: TLS, upstream TLS, IPv6', () => {
  let e: E2E
  let ca: TestCA
  let dir: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flytrap-transport-'))
    ca = await makeTestCA(join(dir, 'ca'))
    e = await e2eFixture({
      mosquitto: { tls: { cert: ca.serverCert, key: ca.serverKey } },
      setup: async (chain) => {
        const owner = chain.as(0)
        await registerTopics(owner, [TOPIC], { [chain.wallet(1).address]: BOTH })
      },
    })
    assert.ok(e.mosquitto.tlsUrl, 'mosquitto has a TLS listener')
  })
  after(async () => {
    await e?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('TLS listener: an mqtts client that verifies the CA relays end to end; one without the CA is refused', async () => {
    const p = await e.startProxy({ listeners: [{ listen: '127.0.0.1:0', tls: { cert: ca.serverCert, key: ca.serverKey } }] })
    assert.equal(p.addresses[0]!.tls, true)
    const url = `mqtts://127.0.0.1:${p.address.port}`
    await roundTrip(e, url, { ca: ca.pem.ca, rejectUnauthorized: true })
    // The client really verifies: without our CA the certificate is untrusted.
    await assert.rejects(e.connect({ key: 1, url, extra: { rejectUnauthorized: true } }), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code ?? err.message), /SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|CERT/i)
      return true
    })
    // Plain MQTT to a TLS port is not served either.
    await assert.rejects(e.connect({ key: 1, url: `mqtt://127.0.0.1:${p.address.port}`, extra: { connectTimeout: 10_000 } }))
  })

  test('client certificates: required → handshake fails without one, works with one', async () => {
    const p = await e.startProxy({ listeners: [{ listen: '127.0.0.1:0', tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert, requireClientCert: true } }] })
    const opened: unknown[] = []
    p.on('session-open', (ev) => opened.push(ev))
    const url = `mqtts://127.0.0.1:${p.address.port}`

    const started = Date.now()
    await assert.rejects(e.connect({ key: 1, url, extra: { ca: ca.pem.ca, rejectUnauthorized: true, connectTimeout: 20_000 } }), (err: NodeJS.ErrnoException) => {
      // TLS 1.3: the server's "certificate required" alert arrives after the client's side of the handshake.
      assert.ok(err.code === 'closed' || /CERTIFICATE_REQUIRED|HANDSHAKE|ECONNRESET|certificate/i.test(`${err.code} ${err.message}`), `unexpected ${err.code}: ${err.message}`)
      return true
    })
    assert.ok(Date.now() - started < 10_000, 'refused promptly, not by a timeout')
    assert.equal(opened.length, 0, 'no session was opened without a client certificate')

    await roundTrip(e, url, { ca: ca.pem.ca, cert: ca.pem.clientCert, key: ca.pem.clientKey, rejectUnauthorized: true })
    assert.equal(opened.length, 2)
  })

  test('client certificates optional (ca without requireClientCert): clients with and without one both work', async () => {
    const p = await e.startProxy({ listeners: [{ listen: '127.0.0.1:0', tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert } }] })
    const url = `mqtts://127.0.0.1:${p.address.port}`
    await roundTrip(e, url, { ca: ca.pem.ca, rejectUnauthorized: true })
    await roundTrip(e, url, { ca: ca.pem.ca, cert: ca.pem.clientCert, key: ca.pem.clientKey, rejectUnauthorized: true })
  })

  test('TLS upstream verified against a CA: works', async () => {
    const p = await e.startProxy({ upstream: { url: e.mosquitto.tlsUrl!, ca: ca.caCert } })
    await roundTrip(e, `mqtt://127.0.0.1:${p.address.port}`)
  })

  test('TLS upstream with the system CAs only: the upstream handshake fails and the client hears Server unavailable (0x88), not left hanging', async () => {
    // A long CONNECT timeout, so only the failed upstream handshake can end the client here.
    const p = await e.startProxy({ upstream: { url: e.mosquitto.tlsUrl! }, limits: { ...DEFAULTS.limits, connectTimeoutMs: 60_000 } })
    const closed = closes(p)
    const started = Date.now()
    await assert.rejects(e.connect({ key: 1, url: `mqtt://127.0.0.1:${p.address.port}`, extra: { connectTimeout: 30_000 } }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 0x88, `expected CONNACK 0x88 (server unavailable), got ${err.code}: ${err.message}`)
      return true
    })
    assert.ok(Date.now() - started < 10_000, `refused after ${Date.now() - started} ms`)
    await waitFor(() => closed.length === 1, 5_000, 'session-close')
    assert.equal(closed[0]!.reason, 'broker-unavailable')
    assert.equal(p.sessionCount(), 0)
  })

  test('TLS upstream with insecure: true (no verification): works', async () => {
    const p = await e.startProxy({ upstream: { url: e.mosquitto.tlsUrl!, insecure: true } })
    await roundTrip(e, `mqtt://127.0.0.1:${p.address.port}`)
  })

  test('IPv6: a proxy on [::1]:0 serves a client connecting over ::1 end to end', async () => {
    const p = await e.startProxy({ listeners: [{ listen: '[::1]:0' }] })
    assert.equal(p.address.host, '::1')
    const opened: { ip: string }[] = []
    p.on('session-open', (ev) => opened.push(ev))
    await roundTrip(e, `mqtt://[::1]:${p.address.port}`)
    assert.equal(opened.length, 2)
    assert.ok(opened.every((o) => o.ip === '::1'), `peers seen as ${opened.map((o) => o.ip).join(', ')}`)
    // The proxy is still there for the next IPv6 client (the 2020 prototype exited on the first one).
    await roundTrip(e, `mqtt://[::1]:${p.address.port}`)
  })
})

