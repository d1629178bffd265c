// The test vectors published in docs/protocol.md, read from the document itself and checked two ways: against
// FlyTrap's own code and against plain ethers (an independent EIP-191 implementation).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet, hashMessage, hexlify, verifyMessage } from 'ethers'
import {
  credentialFromConnect,
  credentialMessage,
  signCredential,
  toMosquittoArgs,
  toUserProperties,
  toUsernamePassword,
  verifyCredential,
  verifyLegacyCredential,
} from '../../../src/lib/auth/credential.js'
import {
  AUTH_METHOD,
  challengeFromConnect,
  challengeMessage,
  connectAuthData,
  signChallenge,
  verifyChallenge,
} from '../../../src/lib/auth/challenge.js'
import { eip191Digest } from '../../../src/lib/auth/recover.js'
import { docVectors, keyValues } from './doc-vectors.js'

const v = docVectors()
function vec(name: string): string {
  const body = v.get(name)
  assert.ok(body !== undefined, `docs/protocol.md has no vector "${name}"`)
  used.add(name)
  return body
}
const used = new Set<string>()

const inputs = keyValues(vec('inputs'))
const KEY = inputs['private key'] as string
const ADDRESS = inputs.address as string
const deployment = { chainId: BigInt(inputs['chain id'] as string), contract: inputs.contract as string }
const CLIENT = inputs['client id'] as string
const EXPIRES = Number(inputs.expires)

describe('docs/protocol.md test vectors', () => {
  it('the key is the documented address', () => {
    assert.equal(new Wallet(KEY).address, ADDRESS)
    assert.equal(deployment.chainId, 31337n)
    assert.equal(CLIENT, 'sensor-1')
    assert.equal(EXPIRES, 1893456000)
  })

  describe('v1 credential', () => {
    const binding = { ...deployment, clientId: CLIENT, expiresAt: EXPIRES }

    it('signed text', () => {
      assert.equal(credentialMessage(binding), vec('credential-message'))
      assert.ok(!vec('credential-message').endsWith('\n'))
      assert.equal(vec('credential-message').split('\n').length, 5)
    })

    it('EIP-191 digest (ours and ethers hashMessage)', () => {
      assert.equal(hexlify(eip191Digest(vec('credential-message'))), vec('credential-digest'))
      assert.equal(hashMessage(vec('credential-message')), vec('credential-digest'))
    })

    it('signature (ours and ethers signMessage), recovering to the address', () => {
      const cred = signCredential({ signer: KEY, ...binding })
      assert.deepEqual(cred, { address: ADDRESS, expiresAt: EXPIRES, signature: vec('credential-signature') })
      assert.equal(new Wallet(KEY).signMessageSync(vec('credential-message')), vec('credential-signature'))
      assert.equal(verifyMessage(vec('credential-message'), vec('credential-signature')), ADDRESS)
    })

    const cred = { address: ADDRESS, expiresAt: EXPIRES, signature: vec('credential-signature') }

    it('user properties, keys in order', () => {
      const expected = JSON.parse(vec('user-properties')) as Record<string, string>
      const got = toUserProperties(cred)
      assert.deepEqual(got, expected)
      assert.deepEqual(Object.keys(got), Object.keys(expected))
    })

    it('username and password', () => {
      assert.deepEqual(toUsernamePassword(cred), { username: vec('username'), password: vec('password') })
    })

    it('mosquitto arguments', () => {
      assert.deepEqual(toMosquittoArgs(cred, { clientId: CLIENT, version: 'mqttv5' }), JSON.parse(vec('mosquitto-v5')))
      assert.deepEqual(toMosquittoArgs(cred, { clientId: CLIENT }), JSON.parse(vec('mosquitto-v5')))
      assert.deepEqual(toMosquittoArgs(cred, { clientId: CLIENT, version: 'mqttv311' }), JSON.parse(vec('mosquitto-v311')))
    })

    it('documented outcomes, for both carriers', () => {
      const connects = [
        { clientId: CLIENT, userProperties: JSON.parse(vec('user-properties')) as Record<string, string> },
        { clientId: CLIENT, username: vec('username'), password: Buffer.from(vec('password'), 'utf8') },
      ]
      const lines = vec('credential-outcomes').split('\n')
      assert.ok(lines.length >= 5)
      for (const line of lines) {
        const m = /^now (\d+): ([a-z-]+)$/.exec(line)
        assert.ok(m, `bad outcome line ${line}`)
        for (const connect of connects) {
          const r = verifyCredential(credentialFromConnect(connect), { ...deployment, now: Number(m[1]) })
          assert.equal(r.outcome, m[2], `${line} (${'username' in connect ? 'password' : 'properties'})`)
          if (r.ok) assert.equal(r.address, ADDRESS)
        }
      }
    })
  })

  describe('challenge/response', () => {
    const nonce = Buffer.from(vec('challenge-nonce').slice(2), 'hex')
    const binding = { ...deployment, clientId: CLIENT, nonce }

    it('CONNECT authentication data is the 20 address bytes', () => {
      assert.equal(hexlify(connectAuthData(ADDRESS)), vec('challenge-connect-data'))
      const req = challengeFromConnect({
        clientId: CLIENT,
        authenticationMethod: AUTH_METHOD,
        authenticationData: Buffer.from(vec('challenge-connect-data').slice(2), 'hex'),
      })
      assert.deepEqual(req, { kind: 'challenge', clientId: CLIENT, address: ADDRESS })
    })

    it('signed text and digest', () => {
      assert.equal(nonce.length, 32)
      assert.equal(challengeMessage(binding), vec('challenge-message'))
      assert.equal(hexlify(eip191Digest(vec('challenge-message'))), vec('challenge-digest'))
      assert.equal(hashMessage(vec('challenge-message')), vec('challenge-digest'))
    })

    it('response (ours and ethers) verifies', () => {
      const response = signChallenge({ signer: KEY, ...binding })
      assert.equal(hexlify(response), vec('challenge-response'))
      assert.equal(new Wallet(KEY).signMessageSync(vec('challenge-message')), vec('challenge-response'))
      const r = verifyChallenge({ clientId: CLIENT, address: ADDRESS, nonce, response }, deployment)
      assert.deepEqual(r, { ok: true, outcome: 'ok', address: ADDRESS, transport: 'enhanced-auth', legacy: false })
    })
  })

  describe('legacy static form', () => {
    it('signed text is the address; signature and digest match', () => {
      assert.equal(vec('legacy-message'), ADDRESS)
      assert.equal(hashMessage(vec('legacy-message')), vec('legacy-digest'))
      assert.equal(hexlify(eip191Digest(vec('legacy-message'))), vec('legacy-digest'))
      const legacy = signCredential({ signer: KEY, legacy: true })
      assert.deepEqual(legacy, { legacy: true, address: ADDRESS, signature: vec('legacy-password') })
      assert.equal(new Wallet(KEY).signMessageSync(ADDRESS), vec('legacy-password'))
    })

    it('verifies only through verifyLegacyCredential', () => {
      const parsed = credentialFromConnect({ clientId: CLIENT, username: ADDRESS, password: Buffer.from(vec('legacy-password')) })
      assert.equal(verifyLegacyCredential(parsed).outcome, 'ok')
      const refused = verifyCredential(parsed, { ...deployment, now: 0 })
      assert.equal(refused.outcome, 'malformed')
      assert.equal(!refused.ok && refused.legacy, true)
    })
  })

  it('every vector in the document is checked', () => {
    assert.deepEqual([...v.keys()].filter((k) => !used.has(k)), [])
  })
})
