import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Wallet } from 'ethers'
import { FlytrapError } from '../../../src/lib/errors.js'
import {
  AUTH_CONTINUE,
  AUTH_METHOD,
  DEFAULT_NONCE_MAX_AGE_MS,
  NONCE_BYTES,
  challengeFromConnect,
  challengeMessage,
  connectAuthData,
  newNonce,
  signChallenge,
  verifyChallenge,
  type VerifyChallengeInput,
} from '../../../src/lib/auth/challenge.js'
import { connackCode } from '../../../src/lib/auth/result.js'

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const OTHER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const ADDRESS = new Wallet(KEY).address
const deployment = { chainId: 31337n, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }
const CLIENT = 'sensor-1'

function answer(over: Partial<{ nonce: Buffer; clientId: string; chainId: bigint; contract: string; signer: string }> = {}) {
  const nonce = over.nonce ?? newNonce()
  const response = signChallenge({ signer: over.signer ?? KEY, ...deployment, clientId: CLIENT, nonce, ...over })
  return { nonce, response }
}

describe('enhanced authentication FLYTRAP-ETH-V1', () => {
  it('constants', () => {
    assert.equal(AUTH_METHOD, 'FLYTRAP-ETH-V1')
    assert.equal(AUTH_CONTINUE, 0x18)
    assert.equal(NONCE_BYTES, 32)
  })

  it('newNonce: 32 fresh random bytes', () => {
    const a = newNonce()
    const b = newNonce()
    assert.equal(a.length, 32)
    assert.notDeepEqual(a, b)
  })

  it('full exchange verifies; the response is 65 bytes', () => {
    const req = challengeFromConnect({ clientId: CLIENT, authenticationMethod: AUTH_METHOD, authenticationData: connectAuthData(ADDRESS) })
    assert.ok('kind' in req)
    const nonce = newNonce()
    const response = signChallenge({ signer: KEY, ...deployment, clientId: req.clientId, nonce })
    assert.equal(response.length, 65)
    const issuedAtMs = Date.now()
    const r = verifyChallenge({ clientId: req.clientId, address: req.address, nonce, response, issuedAtMs }, deployment)
    assert.equal(r.outcome, 'ok')
    assert.equal(r.ok && r.address, ADDRESS)
    assert.equal(connackCode(r, 5), 0)
  })

  it('challengeMessage refuses an unbindable client id or a nonce of the wrong size', () => {
    for (const clientId of ['', 'a\nb', 'a\rb']) {
      assert.throws(() => challengeMessage({ ...deployment, clientId, nonce: newNonce() }), FlytrapError)
    }
    for (const nonce of [Buffer.alloc(31), Buffer.alloc(33), 'x' as unknown as Buffer]) {
      assert.throws(() => challengeMessage({ ...deployment, clientId: CLIENT, nonce }), FlytrapError)
    }
    assert.throws(() => connectAuthData('alice'), FlytrapError)
  })

  describe('challengeFromConnect', () => {
    it('missing without an authentication method', () => {
      for (const fields of [{ clientId: CLIENT }, { clientId: CLIENT, authenticationMethod: null }]) {
        const r = challengeFromConnect(fields)
        assert.equal('outcome' in r && r.outcome, 'missing')
        assert.equal('outcome' in r && connackCode(r, 5), 0x87)
      }
    })

    it('malformed: another method, or data not 20 bytes', () => {
      const cases = [
        { authenticationMethod: 'SCRAM-SHA-1', authenticationData: connectAuthData(ADDRESS) },
        { authenticationMethod: 'flytrap-eth-v1', authenticationData: connectAuthData(ADDRESS) },
        { authenticationMethod: AUTH_METHOD },
        { authenticationMethod: AUTH_METHOD, authenticationData: Buffer.alloc(0) },
        { authenticationMethod: AUTH_METHOD, authenticationData: Buffer.alloc(19) },
        { authenticationMethod: AUTH_METHOD, authenticationData: Buffer.alloc(21) },
        { authenticationMethod: AUTH_METHOD, authenticationData: Buffer.from(ADDRESS) },
        { authenticationMethod: AUTH_METHOD, authenticationData: ADDRESS as unknown as Buffer },
      ]
      for (const c of cases) {
        const r = challengeFromConnect({ clientId: CLIENT, ...c })
        assert.equal('outcome' in r && r.outcome, 'malformed', JSON.stringify(c))
      }
      assert.equal('outcome' in challengeFromConnect(null as never), true)
    })
  })

  describe('verifyChallenge failures', () => {
    const base = (): VerifyChallengeInput => {
      const { nonce, response } = answer()
      return { clientId: CLIENT, address: ADDRESS, nonce, response }
    }

    it('bad-signature: other nonce, client id, deployment, key; tampered', () => {
      const cases: VerifyChallengeInput[] = [
        { ...base(), nonce: newNonce() },
        { ...base(), clientId: 'sensor-2' },
        { ...base(), response: answer({ chainId: 1n }).response },
        { ...base(), response: answer({ contract: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512' }).response },
        { ...base(), address: new Wallet(OTHER_KEY).address },
      ]
      const t = base()
      const tampered = Buffer.from(t.response as Buffer)
      tampered[10] = (tampered[10] as number) ^ 1
      cases.push({ ...t, response: tampered })
      const { nonce } = answer()
      cases.push({ clientId: CLIENT, address: ADDRESS, nonce, response: answer({ signer: OTHER_KEY, nonce }).response })
      const highV = Buffer.from(base().response as Buffer)
      highV[64] = 30
      cases.push({ ...base(), response: highV })
      for (const c of cases) {
        const r = verifyChallenge(c, deployment)
        assert.equal(r.outcome, 'bad-signature')
        assert.equal(connackCode(r, 5), 0x87) // enhanced auth: Not authorized
      }
    })

    it('a nonce signed once does not verify a second, different nonce (no replay)', () => {
      const first = base()
      assert.equal(verifyChallenge(first, deployment).outcome, 'ok')
      assert.equal(verifyChallenge({ ...first, nonce: newNonce() }, deployment).outcome, 'bad-signature')
    })

    it('expired: answered after the nonce lifetime', () => {
      const b = base()
      assert.equal(verifyChallenge({ ...b, issuedAtMs: 1_000 }, { ...deployment, nowMs: 1_000 + DEFAULT_NONCE_MAX_AGE_MS }).outcome, 'ok')
      assert.equal(verifyChallenge({ ...b, issuedAtMs: 1_000 }, { ...deployment, nowMs: 1_001 + DEFAULT_NONCE_MAX_AGE_MS }).outcome, 'expired')
      assert.equal(verifyChallenge({ ...b, issuedAtMs: 0 }, { ...deployment, nowMs: 5_000, maxAgeMs: 4_999 }).outcome, 'expired')
      assert.equal(verifyChallenge({ ...b, issuedAtMs: Number.NaN }, deployment).outcome, 'expired')
    })

    it('wrong-client-id: unbindable client id', () => {
      for (const clientId of ['', 'sensor-1\n', 'a\rb']) {
        const r = verifyChallenge({ ...base(), clientId }, deployment)
        assert.equal(r.outcome, 'wrong-client-id')
        assert.equal(connackCode(r, 5), 0x85)
      }
    })

    it('malformed: response of the wrong size or type, bad state; never throws', () => {
      const responses: unknown[] = [undefined, null, Buffer.alloc(0), Buffer.alloc(64), Buffer.alloc(66), 'x'.repeat(130), 42, {}]
      for (const response of responses) {
        assert.equal(verifyChallenge({ ...base(), response }, deployment).outcome, 'malformed')
      }
      assert.equal(verifyChallenge({ ...base(), response: Buffer.alloc(65) }, deployment).outcome, 'bad-signature')
      assert.equal(verifyChallenge({ ...base(), nonce: Buffer.alloc(16) }, deployment).outcome, 'malformed')
      assert.equal(verifyChallenge({ ...base(), address: 'alice' }, deployment).outcome, 'malformed')
      assert.equal(verifyChallenge(null as never, deployment).outcome, 'malformed')
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.string(), (response, clientId) => {
          const r = verifyChallenge({ ...base(), clientId, response }, deployment)
          assert.equal(r.ok, false)
        }),
        { numRuns: 100 },
      )
    })
  })
})
