// proxy/authenticate.ts: each credential carrier of docs/protocol.md accepted, and refused with the CONNACK code
// the proxy answers (always MQTT 5's here; connackRefusal maps it for 3.1.1). Real signatures from src/lib/auth.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type BaseWallet, Wallet } from 'ethers'
import { AUTH_METHOD, connectAuthData, signChallenge, signCredential, toUserProperties, toUsernamePassword } from '../../../src/lib/auth/index.js'
import type { ConnectPacket } from '../../../src/lib/mqtt/packets.js'
import { answerChallenge, authenticateConnect, authenticateFields, credentialFields, usesEnhancedAuth, type ConnectAuth } from '../../../src/lib/proxy/authenticate.js'
import { AUTH, nowSec } from '../../helpers/session-harness.js'

const device = Wallet.createRandom()
const other = Wallet.createRandom()
const CLIENT = 'sensor-7'

function connect(version: 4 | 5, fields: Partial<ConnectPacket> = {}): ConnectPacket {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 0, clientId: CLIENT, ...fields }
}

function v1(o: { signer?: BaseWallet; clientId?: string; expiresAt?: number; contract?: string; chainId?: bigint } = {}) {
  return signCredential({
    signer: o.signer ?? device,
    chainId: o.chainId ?? AUTH.chainId,
    contract: o.contract ?? AUTH.contract,
    clientId: o.clientId ?? CLIENT,
    expiresAt: o.expiresAt ?? nowSec() + 600,
  })
}

const viaProps = (cred: ReturnType<typeof v1>, extra: Partial<ConnectPacket> = {}) => connect(5, { properties: { userProperties: toUserProperties(cred) }, ...extra })
function viaPassword(version: 4 | 5, cred: Parameters<typeof toUsernamePassword>[0]): ConnectPacket {
  const up = toUsernamePassword(cred)
  return connect(version, { username: up.username, password: Buffer.from(up.password) })
}

function refused(a: ConnectAuth, code: number, outcome: string): void {
  assert.equal(a.kind, 'refuse', JSON.stringify(a))
  if (a.kind !== 'refuse') return
  assert.equal(a.reasonCode, code)
  assert.equal(a.result.outcome, outcome)
}

function accepted(a: ConnectAuth, transport: string, legacy = false): void {
  assert.equal(a.kind, 'ok', JSON.stringify(a))
  if (a.kind !== 'ok') return
  assert.equal(a.result.address, device.address)
  assert.equal(a.result.transport, transport)
  assert.equal(a.result.legacy, legacy)
}

describe('v1 credential in MQTT 5 user properties', () => {
  test('accepted', () => accepted(authenticateConnect(viaProps(v1()), AUTH), 'user-properties'))
  test('expired: 0x86', () => refused(authenticateConnect(viaProps(v1({ expiresAt: nowSec() - 1 })), AUTH), 0x86, 'expired'))
  test('valid for longer than the proxy accepts: 0x86', () => refused(authenticateConnect(viaProps(v1({ expiresAt: nowSec() + AUTH.maxLifetimeSec + 120 })), AUTH), 0x86, 'too-long'))
  test('signed for another client id: 0x86 (the proxy does not diagnose)', () => refused(authenticateConnect(viaProps(v1({ clientId: 'sensor-8' })), AUTH), 0x86, 'bad-signature'))
  test('signed for another contract: 0x86', () => refused(authenticateConnect(viaProps(v1({ contract: '0x' + '11'.repeat(20) })), AUTH), 0x86, 'bad-signature'))
  test('signed for another chain: 0x86', () => refused(authenticateConnect(viaProps(v1({ chainId: 1n })), AUTH), 0x86, 'bad-signature'))
  test("someone else's signature for the device's address: 0x86", () => {
    const forged = { ...v1({ signer: other }), address: device.address }
    refused(authenticateConnect(viaProps(forged), AUTH), 0x86, 'bad-signature')
  })
  test('a property missing: 0x86 malformed', () => {
    const props = toUserProperties(v1())
    delete (props as Record<string, string>)['flytrap-sig']
    refused(authenticateConnect(connect(5, { properties: { userProperties: props } }), AUTH), 0x86, 'malformed')
  })
  test('in user properties and username/password at once: 0x86 malformed', () => {
    const up = toUsernamePassword(v1())
    refused(authenticateConnect(viaProps(v1(), { username: up.username, password: Buffer.from(up.password) }), AUTH), 0x86, 'malformed')
  })
  test('an empty client id cannot be bound: 0x85', () => {
    const cred = v1()
    refused(authenticateConnect({ ...viaProps(cred), clientId: '' }, AUTH), 0x85, 'wrong-client-id')
  })
})

describe('v1 credential in username/password', () => {
  for (const version of [4, 5] as const) {
    test(`accepted (MQTT ${version === 5 ? '5' : '3.1.1'})`, () => accepted(authenticateConnect(viaPassword(version, v1()), AUTH), 'username-password'))
  }
  test('a tampered expiry: 0x86 bad signature', () => {
    const c = viaPassword(4, v1())
    const [, , sig] = String(c.password).split(':')
    c.password = Buffer.from(`v1:${nowSec() + 900}:${sig}`)
    refused(authenticateConnect(c, AUTH), 0x86, 'bad-signature')
  })
  test('username without password: 0x86 malformed', () => refused(authenticateConnect(connect(4, { username: device.address }), AUTH), 0x86, 'malformed'))
  test('an unknown version prefix: 0x86 malformed', () => {
    refused(authenticateConnect(connect(4, { username: device.address, password: Buffer.from('v2:1:0x00') }), AUTH), 0x86, 'malformed')
  })
})

describe('no credential', () => {
  test('MQTT 5 and 3.1.1: missing → 0x87 (Not authorized; 3.1.1 answers 5)', () => {
    refused(authenticateConnect(connect(5), AUTH), 0x87, 'missing')
    refused(authenticateConnect(connect(4), AUTH), 0x87, 'missing')
  })
})

describe('legacy static credential (username = address, password = signature over it)', () => {
  const legacy = signCredential({ signer: device, legacy: true })
  test('refused unless the operator enabled it: 0x86, flagged legacy', () => {
    const a = authenticateConnect(viaPassword(4, legacy), AUTH)
    refused(a, 0x86, 'malformed')
    assert.equal(a.kind === 'refuse' && !a.result.ok && a.result.legacy, true)
  })
  test('accepted with allowLegacy, marked legacy', () => accepted(authenticateConnect(viaPassword(4, legacy), { ...AUTH, allowLegacy: true }), 'username-password', true))
  test("with allowLegacy, another key's signature is still refused: 0x86", () => {
    const forged = { ...signCredential({ signer: other, legacy: true }), address: device.address }
    refused(authenticateConnect(viaPassword(4, forged), { ...AUTH, allowLegacy: true }), 0x86, 'bad-signature')
  })
})

describe('MQTT 5 enhanced authentication (challenge)', () => {
  const request = (data: Buffer = connectAuthData(device.address), method = AUTH_METHOD) =>
    connect(5, { properties: { authenticationMethod: method, authenticationData: data } })

  function challenge(): Extract<ConnectAuth, { kind: 'challenge' }> {
    const c = authenticateConnect(request(), AUTH)
    assert.equal(c.kind, 'challenge')
    return c as Extract<ConnectAuth, { kind: 'challenge' }>
  }

  test('CONNECT gets a fresh 32-byte nonce per connection; a signed answer is accepted', () => {
    const c = challenge()
    assert.equal(c.address, device.address)
    assert.equal(c.nonce.length, 32)
    assert.notDeepEqual(challenge().nonce, c.nonce)
    const answer = signChallenge({ signer: device, chainId: AUTH.chainId, contract: AUTH.contract, clientId: CLIENT, nonce: c.nonce })
    accepted(answerChallenge(c, answer, AUTH), 'enhanced-auth')
  })
  test('an answer signed by another key, or over another nonce: 0x87', () => {
    const c = challenge()
    refused(answerChallenge(c, signChallenge({ signer: other, chainId: AUTH.chainId, contract: AUTH.contract, clientId: CLIENT, nonce: c.nonce }), AUTH), 0x87, 'bad-signature')
    const stale = challenge()
    refused(answerChallenge(c, signChallenge({ signer: device, chainId: AUTH.chainId, contract: AUTH.contract, clientId: CLIENT, nonce: stale.nonce }), AUTH), 0x87, 'bad-signature')
  })
  test('an answer too late: 0x87 expired', () => {
    const c = challenge()
    const answer = signChallenge({ signer: device, chainId: AUTH.chainId, contract: AUTH.contract, clientId: CLIENT, nonce: c.nonce })
    refused(answerChallenge({ ...c, issuedAtMs: Date.now() - 60_000 }, answer, AUTH), 0x87, 'expired')
  })
  test('an answer that is not a 65-byte signature: 0x87 malformed', () => refused(answerChallenge(challenge(), Buffer.alloc(64), AUTH), 0x87, 'malformed'))
  test('another authentication method: 0x8C', () => refused(authenticateConnect(request(connectAuthData(device.address), 'SCRAM-SHA-1'), AUTH), 0x8c, 'malformed'))
  test('authentication data that is not 20 address bytes: 0x87', () => refused(authenticateConnect(request(Buffer.alloc(19)), AUTH), 0x87, 'malformed'))
  test('only MQTT 5 CONNECTs with a method use it; credentialFields carries what workers verify', () => {
    assert.equal(usesEnhancedAuth(request()), true)
    assert.equal(usesEnhancedAuth(viaProps(v1())), false)
    assert.equal(usesEnhancedAuth({ ...request(), protocolVersion: 4 }), false)
    const c = viaPassword(4, v1())
    const fields = credentialFields(c)
    assert.deepEqual([fields.version, fields.clientId, fields.username], [4, CLIENT, device.address])
    accepted(authenticateFields(fields, AUTH), 'username-password')
  })
})
