import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { SigningKey, Wallet, getBytes, hexlify } from 'ethers'
import { FlytrapError } from '../../../src/lib/errors.js'
import {
  type ConnectCredentialFields,
  type Credential,
  DEFAULT_MAX_LIFETIME_SEC,
  LEGACY_WARNING,
  assertVerified,
  credentialFromConnect,
  credentialMessage,
  signCredential,
  toEnv,
  toMosquittoArgs,
  toUserProperties,
  toUsernamePassword,
  verifyCredential,
  verifyLegacyCredential,
} from '../../../src/lib/auth/credential.js'
import { connackCode } from '../../../src/lib/auth/result.js'

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const OTHER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' // anvil #1
const wallet = new Wallet(KEY)
const ADDRESS = wallet.address
const deployment = { chainId: 31337n, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }
const OTHER_CONTRACT = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const NOW = 1_800_000_000
const EXPIRES = NOW + 3600
const CLIENT = 'sensor-1'
const opts = { ...deployment, now: NOW }

function sign(over: Partial<{ clientId: string; expiresAt: number; chainId: bigint; contract: string; signer: string }> = {}): Credential {
  return signCredential({ signer: over.signer ?? KEY, ...deployment, clientId: CLIENT, expiresAt: EXPIRES, ...over })
}
const cred = sign()

function viaProps(c: Credential, clientId = CLIENT, extra: Record<string, string | string[]> = {}): ConnectCredentialFields {
  return { clientId, userProperties: { ...toUserProperties(c), ...extra } }
}
function viaPassword(c: Credential, clientId = CLIENT): ConnectCredentialFields {
  const { username, password } = toUsernamePassword(c)
  return { clientId, username, password: Buffer.from(password, 'utf8') }
}
function check(fields: ConnectCredentialFields, o: Parameters<typeof verifyCredential>[1] = opts) {
  return verifyCredential(credentialFromConnect(fields), o)
}
function withSig(c: Credential, mutate: (b: Uint8Array) => void): Credential {
  const b = getBytes(c.signature).slice()
  mutate(b)
  return { ...c, signature: hexlify(b) }
}

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const be32 = (x: bigint) => getBytes('0x' + x.toString(16).padStart(64, '0'))

describe('credentialMessage', () => {
  it('is the five documented lines, contract EIP-55 whatever the configured spelling', () => {
    const text = credentialMessage({ ...deployment, contract: deployment.contract.toLowerCase(), clientId: 'a b:c', expiresAt: 7 })
    assert.equal(
      text,
      'FlyTrap MQTT credential v1\nchain: 31337\ncontract: 0x5FbDB2315678afecb367f032d93F642f64180aa3\nclient: a b:c\nexpires: 7',
    )
  })

  for (const clientId of ['', 'a\nb', 'a\rb', 'x\r\nexpires: 1', 'nul\u0000', 'lone\ud800', 'lone\udc00x', 'x'.repeat(65536)]) {
    it(`refuses client id ${JSON.stringify(clientId.slice(0, 20))}`, () => {
      assert.throws(() => credentialMessage({ ...deployment, clientId, expiresAt: EXPIRES }), FlytrapError)
      assert.throws(() => sign({ clientId }), FlytrapError)
    })
  }

  it('accepts a non-ASCII client id (UTF-8) and a surrogate pair', () => {
    const c = sign({ clientId: 'capteur-é-😀' })
    assert.equal(check(viaProps(c, 'capteur-é-😀')).outcome, 'ok')
  })

  it('refuses a bad deployment or expiry', () => {
    const b = { ...deployment, clientId: CLIENT, expiresAt: EXPIRES }
    assert.throws(() => credentialMessage({ ...b, chainId: 0n }), FlytrapError)
    assert.throws(() => credentialMessage({ ...b, chainId: 1 as unknown as bigint }), FlytrapError)
    assert.throws(() => credentialMessage({ ...b, contract: '0x1234' }), FlytrapError)
    assert.throws(() => credentialMessage({ ...b, contract: '0x5fbDB2315678afecb367f032d93F642f64180aa3' }), FlytrapError) // bad checksum
    for (const expiresAt of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => credentialMessage({ ...b, expiresAt }), FlytrapError)
    }
  })
})

describe('signCredential', () => {
  it('accepts a Wallet, a SigningKey, and hex with or without 0x; all give the same deterministic signature', () => {
    const sigs = [wallet, new SigningKey(KEY), KEY, KEY.slice(2), KEY.toUpperCase().replace('0X', '0x')].map(
      (signer) => signCredential({ signer, ...deployment, clientId: CLIENT, expiresAt: EXPIRES }).signature,
    )
    assert.equal(new Set(sigs).size, 1)
    assert.equal(cred.address, ADDRESS)
  })

  it('refuses an unusable key with a key error', () => {
    for (const signer of ['0x1234', 'zz'.repeat(32), '0x' + '00'.repeat(32), 42 as unknown as string]) {
      assert.throws(
        () => signCredential({ signer, ...deployment, clientId: CLIENT, expiresAt: EXPIRES }),
        (e: unknown) => e instanceof FlytrapError && e.exit === 6,
      )
    }
  })
})

describe('encoders', () => {
  it('toEnv', () => {
    assert.deepEqual(toEnv(cred, { clientId: CLIENT }), {
      FLYTRAP_CRED_ADDRESS: ADDRESS,
      FLYTRAP_CRED_EXPIRES: String(EXPIRES),
      FLYTRAP_CRED_SIG: cred.signature,
      FLYTRAP_CRED_USERNAME: ADDRESS,
      FLYTRAP_CRED_PASSWORD: `v1:${EXPIRES}:${cred.signature}`,
      FLYTRAP_CRED_CLIENT_ID: CLIENT,
    })
    assert.equal(toEnv(cred).FLYTRAP_CRED_CLIENT_ID, undefined)
  })

  it('toMosquittoArgs: MQTT 5 over username/password, and refusals', () => {
    assert.deepEqual(toMosquittoArgs(cred, { clientId: CLIENT, transport: 'username-password' }), [
      '-V', 'mqttv5', '-i', CLIENT, '-u', ADDRESS, '-P', `v1:${EXPIRES}:${cred.signature}`,
    ])
    assert.throws(() => toMosquittoArgs(cred, { clientId: CLIENT, version: 'mqttv311', transport: 'user-properties' }), FlytrapError)
    assert.throws(() => toMosquittoArgs(cred, { clientId: 'a\nb' }), FlytrapError)
    assert.throws(() => toMosquittoArgs(cred, { clientId: CLIENT, version: 'mqttv31' as 'mqttv311' }), FlytrapError)
  })
})

describe('verifyCredential: success', () => {
  it('accepts both carriers', () => {
    for (const fields of [viaProps(cred), viaPassword(cred)]) {
      const r = check(fields)
      assert.equal(r.outcome, 'ok')
      assert.ok(r.ok)
      assert.equal(r.address, ADDRESS)
      assert.equal(r.expiresAt, EXPIRES)
      assert.equal(r.legacy, false)
      assertVerified(r)
    }
    assert.equal(check(viaProps(cred)).ok && check(viaProps(cred)).transport, 'user-properties')
    assert.equal(check(viaPassword(cred)).ok && check(viaPassword(cred)).transport, 'username-password')
  })

  it('accepts the password as a string, flytrap-v absent, single-element arrays, lower/upper-case address and hex', () => {
    const { username, password } = toUsernamePassword(cred)
    assert.equal(check({ clientId: CLIENT, username, password }).outcome, 'ok')
    const props = toUserProperties(cred)
    delete props['flytrap-v']
    assert.equal(check({ clientId: CLIENT, userProperties: props }).outcome, 'ok')
    assert.equal(check({ clientId: CLIENT, userProperties: { ...props, 'flytrap-sig': [cred.signature] } }).outcome, 'ok')
    for (const address of [ADDRESS.toLowerCase(), '0x' + ADDRESS.slice(2).toUpperCase()]) {
      const r = check({ clientId: CLIENT, userProperties: { ...props, 'flytrap-address': address } })
      assert.ok(r.ok)
      assert.equal(r.address, ADDRESS) // always EIP-55
    }
    assert.equal(check(viaProps({ ...cred, signature: '0x' + cred.signature.slice(2).toUpperCase() })).outcome, 'ok')
  })

  it('accepts v = 0/1 as aliases of 27/28', () => {
    const alias = withSig(cred, (b) => (b[64] = (b[64] as number) - 27))
    assert.equal(check(viaProps(alias)).outcome, 'ok')
  })

  it('leaves other user properties alone', () => {
    assert.equal(check(viaProps(cred, CLIENT, { 'app-version': '3', 'Flytrap-Sig': 'x' })).outcome, 'ok')
  })

  it('normalises the verifier contract spelling', () => {
    assert.equal(check(viaProps(cred), { ...opts, contract: deployment.contract.toLowerCase() }).outcome, 'ok')
  })
})

describe('verifyCredential: every failure outcome', () => {
  it('missing', () => {
    const missing: ConnectCredentialFields[] = [
      { clientId: CLIENT },
      { clientId: CLIENT, userProperties: {} },
      { clientId: CLIENT, userProperties: null },
      { clientId: CLIENT, username: null, password: null },
      { clientId: CLIENT, userProperties: { unrelated: 'x' } },
    ]
    for (const fields of missing) {
      const r = check(fields)
      assert.equal(r.outcome, 'missing', JSON.stringify(fields))
      assert.equal(connackCode(r, 5), 0x87)
      assert.equal(connackCode(r, 4), 5)
    }
  })

  it('bad-signature: another key, client id, chain, contract, expiry', () => {
    const wrong = [
      sign({ signer: OTHER_KEY }), // claims the other key's address? no: swap below
      sign({ clientId: 'sensor-2' }),
      sign({ chainId: 1n }),
      sign({ contract: OTHER_CONTRACT }),
      sign({ expiresAt: EXPIRES + 1 }),
    ]
    wrong[0] = { ...(wrong[0] as Credential), address: ADDRESS } // signed by #1, claims #0
    for (const c of wrong) {
      for (const fields of [viaProps({ ...c, expiresAt: EXPIRES }), viaPassword({ ...c, expiresAt: EXPIRES })]) {
        const r = check(fields)
        assert.equal(r.outcome, 'bad-signature')
        assert.equal(!r.ok && r.claimedAddress, ADDRESS)
        assert.equal(connackCode(r, 5), 0x86)
        assert.equal(connackCode(r, 4), 4)
      }
    }
  })

  it('bad-signature: non-canonical signatures (high s, bad v, r or s zero or ≥ n, r off the curve)', () => {
    const s = BigInt('0x' + cred.signature.slice(66, 130))
    const highS = withSig(cred, (b) => {
      b.set(be32(N - s), 32)
      b[64] = b[64] === 27 ? 28 : 27
    })
    const cases = [
      highS,
      withSig(cred, (b) => (b[64] = 29)),
      withSig(cred, (b) => (b[64] = 2)),
      withSig(cred, (b) => b.fill(0, 0, 32)),
      withSig(cred, (b) => b.fill(0, 32, 64)),
      withSig(cred, (b) => b.set(be32(N), 0)),
      withSig(cred, (b) => b.fill(0xff, 0, 32)),
      withSig(cred, (b) => b.set(be32(5n), 0)), // x = 5 is not on secp256k1
    ]
    for (const c of cases) assert.equal(check(viaProps(c)).outcome, 'bad-signature', c.signature)
  })

  it('expired, at and after the expiry second', () => {
    for (const now of [EXPIRES, EXPIRES + 1, EXPIRES + 10 ** 9]) {
      const r = check(viaProps(cred), { ...opts, now })
      assert.equal(r.outcome, 'expired')
      assert.equal(connackCode(r, 5), 0x86)
    }
    assert.equal(check(viaProps(cred), { ...opts, now: EXPIRES - 1 }).outcome, 'ok')
  })

  it('too-long: beyond the default 366 days or a configured maximum', () => {
    assert.equal(DEFAULT_MAX_LIFETIME_SEC, 366 * 86400)
    const far = sign({ expiresAt: NOW + DEFAULT_MAX_LIFETIME_SEC + 1 })
    assert.equal(check(viaProps(far)).outcome, 'too-long')
    const edge = sign({ expiresAt: NOW + DEFAULT_MAX_LIFETIME_SEC })
    assert.equal(check(viaProps(edge)).outcome, 'ok')
    assert.equal(check(viaProps(cred), { ...opts, maxLifetimeSec: 3599 }).outcome, 'too-long')
    assert.equal(check(viaProps(cred), { ...opts, maxLifetimeSec: 3600 }).outcome, 'ok')
    const forever = sign({ expiresAt: Number.MAX_SAFE_INTEGER })
    assert.equal(check(viaPassword(forever)).outcome, 'too-long')
  })

  it('wrong-client-id: a CONNECT client id that cannot be bound', () => {
    for (const clientId of ['', 'sensor-1\n', 'sensor-1\rexpires: 1', '\u0000', '\ud800', 42 as unknown as string]) {
      for (const fields of [viaProps(cred, clientId), viaPassword(cred, clientId)]) {
        const r = check(fields)
        assert.equal(r.outcome, 'wrong-client-id', JSON.stringify(clientId))
        assert.equal(connackCode(r, 5), 0x85)
        assert.equal(connackCode(r, 4), 2)
      }
    }
  })

  it('a credential for one client id fails under another (no diagnosis: bad-signature)', () => {
    assert.equal(check(viaProps(cred, 'sensor-2')).outcome, 'bad-signature')
  })

  it('diagnose: wrong-deployment and wrong-client-id, off the packet path', () => {
    const other = sign({ contract: OTHER_CONTRACT })
    const diagnose = { deployments: [{ chainId: 1n, contract: deployment.contract }, { chainId: 31337n, contract: OTHER_CONTRACT }], clientIds: ['sensor-2'] }
    const r1 = check(viaProps(other), { ...opts, diagnose })
    assert.equal(r1.outcome, 'wrong-deployment')
    assert.match(!r1.ok ? r1.detail : '', /0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512/)
    assert.equal(connackCode(r1, 5), 0x86)
    const r2 = check(viaProps(cred, 'sensor-2'), { ...opts, diagnose: { clientIds: ['x\ny', 'sensor-3', CLIENT] } })
    assert.equal(r2.outcome, 'wrong-client-id')
    assert.equal(check(viaProps(sign({ signer: OTHER_KEY }), CLIENT, { 'flytrap-address': ADDRESS }), { ...opts, diagnose }).outcome, 'bad-signature')
    // The budget bounds the work: the matching candidate is the 17th and is never tried.
    const many = Array.from({ length: 16 }, (_, i) => `c${i}`)
    assert.equal(check(viaProps(cred, 'sensor-2'), { ...opts, diagnose: { clientIds: [...many, CLIENT] } }).outcome, 'bad-signature')
  })

  it('malformed: both carriers at once', () => {
    const { username, password } = toUsernamePassword(cred)
    assert.equal(check({ ...viaProps(cred), username }).outcome, 'malformed')
    assert.equal(check({ ...viaProps(cred), password: Buffer.from(password) }).outcome, 'malformed')
  })

  it('malformed: user properties', () => {
    const p = toUserProperties(cred)
    const without = (k: string) => Object.fromEntries(Object.entries(p).filter(([key]) => key !== k))
    const cases: Record<string, unknown>[] = [
      without('flytrap-address'),
      without('flytrap-expires'),
      without('flytrap-sig'),
      { 'flytrap-v': '1' },
      { ...p, 'flytrap-v': '2' },
      { ...p, 'flytrap-v': '' },
      { ...p, 'flytrap-sig': [cred.signature, cred.signature] }, // duplicated, even if identical
      { ...p, 'flytrap-address': [ADDRESS, '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'] },
      { ...p, 'flytrap-expires': [] },
      { ...p, 'flytrap-v': ['1', '1'] },
      { ...p, 'flytrap-sig': 12 },
      { ...p, 'flytrap-sig': { a: 1 } },
      { ...p, 'flytrap-sig': null },
      { ...p, 'flytrap-sig': '' },
      { ...p, 'flytrap-sig': cred.signature.slice(0, -2) }, // 64 bytes
      { ...p, 'flytrap-sig': cred.signature + '00' }, // 66 bytes
      { ...p, 'flytrap-sig': cred.signature.slice(2) }, // no 0x
      { ...p, 'flytrap-sig': cred.signature.slice(0, -1) + 'g' }, // non-hex
      { ...p, 'flytrap-sig': cred.signature + 'a'.repeat(1_000_000) },
      { ...p, 'flytrap-address': 'alice' },
      { ...p, 'flytrap-address': ADDRESS.slice(0, -1) },
      { ...p, 'flytrap-address': '0X' + ADDRESS.slice(2) },
      { ...p, 'flytrap-address': '0xf39fd6e51aad88F6F4ce6aB8827279cffFb92266' }, // wrong checksum
      { ...p, 'flytrap-address': ' ' + ADDRESS },
      { ...p, 'flytrap-expires': '' },
      { ...p, 'flytrap-expires': '0' + EXPIRES },
      { ...p, 'flytrap-expires': '+' + EXPIRES },
      { ...p, 'flytrap-expires': EXPIRES + ' ' },
      { ...p, 'flytrap-expires': '1e9' },
      { ...p, 'flytrap-expires': '-1' },
      { ...p, 'flytrap-expires': '0x70' },
      { ...p, 'flytrap-expires': '9'.repeat(17) },
      { ...p, 'flytrap-expires': '9007199254740992' }, // 2^53
      { ...p, 'flytrap-expires': '1'.repeat(1_000_000) },
    ]
    for (const userProperties of cases) {
      const r = check({ clientId: CLIENT, userProperties: userProperties as Record<string, string> })
      assert.equal(r.outcome, 'malformed', JSON.stringify(userProperties).slice(0, 200))
      assert.equal(connackCode(r, 5), 0x86)
    }
  })

  it('malformed: username/password', () => {
    const { username, password } = toUsernamePassword(cred)
    const cases: Partial<Record<'username' | 'password', unknown>>[] = [
      { username },
      { password: Buffer.from(password) },
      { username, password: Buffer.alloc(0) },
      { username, password: '' },
      { username: '', password: Buffer.from(password) },
      { username: 'device-7', password: Buffer.from(password) },
      { username: 42, password: Buffer.from(password) },
      { username: 'x'.repeat(1_000_000), password: Buffer.from(password) },
      { username, password: Buffer.alloc(1_000_000, 0x61) },
      { username, password: 'v'.repeat(1_000_000) },
      { username, password: Buffer.from(password + ' ') },
      { username, password: Buffer.from('v1:' + EXPIRES + ':' + cred.signature + ':x') },
      { username, password: Buffer.from('v1:' + EXPIRES) },
      { username, password: Buffer.from('v1::' + cred.signature) },
      { username, password: Buffer.from('v1:0' + EXPIRES + ':' + cred.signature) },
      { username, password: Buffer.from('v1:' + EXPIRES + ':' + cred.signature.slice(0, 100)) },
      { username, password: Buffer.from('v1:' + EXPIRES + ':' + cred.signature.slice(2)) },
      { username, password: Buffer.from('v2:' + EXPIRES + ':' + cred.signature) },
      { username, password: Buffer.from('V1:' + EXPIRES + ':' + cred.signature) },
      { username, password: Buffer.from('hunter2') },
      { username, password: Buffer.from([0xff, 0xfe, 0x00, 0x01]) },
      { username, password: Buffer.from('v1:é:' + cred.signature) },
      { username, password: 12345 },
      { username, password: { length: 3 } },
      { username, password: cred.signature.slice(0, -2) }, // 64-byte "legacy"
    ]
    for (const c of cases) {
      const r = check({ clientId: CLIENT, ...(c as object) })
      assert.equal(r.outcome, 'malformed', JSON.stringify(c).slice(0, 200))
      assert.equal(connackCode(r, 4), 4)
    }
  })

  it('malformed: garbage at the top level never throws', () => {
    for (const fields of [null, undefined, 42, 'connect', [], { clientId: CLIENT, userProperties: 'flytrap-sig=1' }]) {
      const r = verifyCredential(credentialFromConnect(fields as unknown as ConnectCredentialFields), opts)
      assert.equal(r.ok, false)
    }
    for (const input of [null, undefined, 42, {}]) {
      assert.equal(verifyCredential(input as never, opts).ok, false)
      assert.equal(verifyLegacyCredential(input as never).ok, false)
    }
    const hostile = new Proxy({}, { get() { throw new Error('boom') }, has() { throw new Error('boom') } })
    assert.equal('outcome' in credentialFromConnect(hostile as ConnectCredentialFields), true)
    assert.equal('outcome' in credentialFromConnect({ clientId: CLIENT, userProperties: hostile }), true)
  })

  it('invalid verifier options are a usage error (configuration, not client input)', () => {
    assert.throws(() => check(viaProps(cred), { ...opts, contract: 'nope' }), FlytrapError)
    assert.throws(() => check(viaProps(cred), { ...opts, chainId: -1n }), FlytrapError)
    assert.throws(() => check(viaProps(cred), { ...opts, maxLifetimeSec: -1 }), FlytrapError)
  })

  it('property: arbitrary CONNECT fields never throw and never verify', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.integer(), fc.constant(null))
    const props = fc.dictionary(
      fc.oneof(fc.constantFrom('flytrap-address', 'flytrap-expires', 'flytrap-sig', 'flytrap-v'), fc.string()),
      value,
    )
    fc.assert(
      fc.property(
        fc.record(
          {
            clientId: fc.string(),
            username: fc.oneof(fc.string(), fc.constantFrom(ADDRESS, ADDRESS.toLowerCase())),
            password: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string().map((s) => `v1:${s}`), fc.string()),
            userProperties: props,
          },
          { requiredKeys: [] },
        ),
        (fields) => {
          const r = verifyCredential(credentialFromConnect(fields as ConnectCredentialFields), opts)
          assert.equal(r.ok, false)
          assert.ok(['missing', 'malformed', 'bad-signature', 'expired', 'too-long', 'wrong-client-id'].includes(r.outcome))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('property: flipping any bit of a valid password never verifies', () => {
    const { username, password } = toUsernamePassword(cred)
    const bytes = Buffer.from(password)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const b = Buffer.from(bytes)
        b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7))
        const r = check({ clientId: CLIENT, username, password: b })
        // a flip of the signature's case-bit (0x20 on a-f) gives the same hex value: still ok
        if (r.ok) assert.equal(b.toString().toLowerCase(), password.toLowerCase())
      }),
      { numRuns: 200 },
    )
  })
})

describe('legacy static form', () => {
  const legacy = signCredential({ signer: KEY, legacy: true })

  it('is produced only on request, and warns', () => {
    assert.equal(legacy.legacy, true)
    assert.equal(legacy.address, ADDRESS)
    assert.match(LEGACY_WARNING, /replay it forever/)
    assert.throws(() => toUserProperties(legacy as unknown as Credential), FlytrapError)
    assert.deepEqual(toUsernamePassword(legacy), { username: ADDRESS, password: legacy.signature })
    assert.deepEqual(toMosquittoArgs(legacy, { clientId: CLIENT }), ['-V', 'mqttv5', '-i', CLIENT, '-u', ADDRESS, '-P', legacy.signature])
    assert.throws(() => toMosquittoArgs(legacy, { clientId: CLIENT, transport: 'user-properties' }), FlytrapError)
    assert.equal(toEnv(legacy).FLYTRAP_CRED_LEGACY, '1')
    assert.equal(toEnv(legacy).FLYTRAP_CRED_EXPIRES, undefined)
  })

  it('verifyCredential refuses it; verifyLegacyCredential accepts it under any client id, forever', () => {
    const fields = { clientId: 'anything', username: ADDRESS, password: Buffer.from(legacy.signature) }
    const parsed = credentialFromConnect(fields)
    assert.equal('kind' in parsed && parsed.kind, 'legacy')
    const refused = verifyCredential(parsed, opts)
    assert.equal(refused.outcome, 'malformed')
    assert.equal(!refused.ok && refused.legacy, true)
    const r = verifyLegacyCredential(parsed)
    assert.deepEqual(r, { ok: true, outcome: 'ok', address: ADDRESS, transport: 'username-password', legacy: true })
  })

  it('signs the username text as sent (a prototype device signing the lower-case address still works)', () => {
    const lower = ADDRESS.toLowerCase()
    const sig = wallet.signMessageSync(lower)
    assert.equal(verifyLegacyCredential(credentialFromConnect({ clientId: 'x', username: lower, password: sig })).outcome, 'ok')
    // ... but the EIP-55 signature does not verify under the lower-case username
    assert.equal(
      verifyLegacyCredential(credentialFromConnect({ clientId: 'x', username: lower, password: legacy.signature })).outcome,
      'bad-signature',
    )
  })

  it('failures', () => {
    const other = new Wallet(OTHER_KEY).signMessageSync(ADDRESS)
    assert.equal(verifyLegacyCredential(credentialFromConnect({ clientId: 'x', username: ADDRESS, password: other })).outcome, 'bad-signature')
    assert.equal(verifyLegacyCredential(credentialFromConnect(viaPassword(cred))).outcome, 'malformed') // v1 is not legacy
    assert.equal(verifyLegacyCredential(credentialFromConnect({ clientId: 'x' })).outcome, 'missing')
    assert.equal(verifyLegacyCredential(credentialFromConnect({ clientId: 'x', username: ADDRESS, password: '0x00' })).outcome, 'malformed')
  })
})

describe('connackCode', () => {
  it('maps every outcome for MQTT 5 and 3.1.1', () => {
    const table: [Parameters<typeof connackCode>[0], number, number][] = [
      ['missing', 0x87, 5],
      ['malformed', 0x86, 4],
      ['bad-signature', 0x86, 4],
      ['expired', 0x86, 4],
      ['too-long', 0x86, 4],
      ['wrong-deployment', 0x86, 4],
      ['wrong-client-id', 0x85, 2],
    ]
    for (const [outcome, v5, v311] of table) {
      assert.equal(connackCode(outcome, 5), v5, String(outcome))
      assert.equal(connackCode(outcome, 4), v311, String(outcome))
      assert.equal(connackCode(outcome, 3), v311, String(outcome))
    }
    const ok = check(viaProps(cred))
    assert.equal(connackCode(ok, 5), 0)
    assert.equal(connackCode(ok, 4), 0)
  })
})
