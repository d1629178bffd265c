import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Wallet, getBytes, hashMessage, hexlify } from 'ethers'
import {
  eip191Digest,
  nativeBackendError,
  parseSignature,
  recoverAddress,
  recoverBackend,
  recoverMessageSigner,
  useRecoverBackend,
} from '../../../src/lib/auth/recover.js'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const HALF_N = N >> 1n
const be32 = (x: bigint) => getBytes('0x' + x.toString(16).padStart(64, '0'))
const sigOf = (r: bigint, s: bigint, v: number) => {
  const b = new Uint8Array(65)
  b.set(be32(r), 0)
  b.set(be32(s), 32)
  b[64] = v
  return b
}

const wallet = new Wallet('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80')
const MESSAGE = 'hello FlyTrap'
const SIG = wallet.signMessageSync(MESSAGE)
const DIGEST = getBytes(hashMessage(MESSAGE))

const glibcX64 =
  process.platform === 'linux' &&
  process.arch === 'x64' &&
  Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime)

describe('recover', () => {
  after(() => useRecoverBackend('auto'))

  it('eip191Digest equals ethers hashMessage (ASCII, UTF-8, empty, bytes, long)', () => {
    for (const m of ['', 'a', MESSAGE, 'capteur-é-😀\nline', 'x'.repeat(10_000)]) {
      assert.equal(hexlify(eip191Digest(m)), hashMessage(m))
      assert.equal(hexlify(eip191Digest(Buffer.from(m))), hashMessage(Buffer.from(m)))
    }
  })

  it('the native backend loads from the prebuilt binary on linux-x64 glibc', { skip: !glibcX64 && 'not linux-x64 glibc' }, () => {
    assert.equal(nativeBackendError(), undefined)
    assert.equal(recoverBackend(), 'native')
  })

  it('forcing native where it cannot load throws; js can always be forced', () => {
    assert.equal(useRecoverBackend('js'), 'js')
    assert.equal(recoverBackend(), 'js')
    useRecoverBackend('auto')
    if (nativeBackendError()) assert.throws(() => useRecoverBackend('native'))
    else assert.equal(useRecoverBackend('native'), 'native')
    useRecoverBackend('auto')
  })

  const backends = nativeBackendError() ? (['js'] as const) : (['native', 'js'] as const)
  for (const backend of backends) {
    describe(`backend ${backend}`, () => {
      it('recovers what ethers signed, for random keys and messages', () => {
        useRecoverBackend(backend)
        fc.assert(
          fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.string(), (seed, message) => {
            let w: Wallet
            try {
              w = new Wallet(hexlify(seed))
              void w.address
            } catch {
              return // 0 or ≥ n: not a key
            }
            const sig = w.signMessageSync(message)
            assert.equal(recoverMessageSigner(message, sig), w.address.toLowerCase())
            assert.equal(recoverAddress(getBytes(hashMessage(message)), getBytes(sig)), w.address.toLowerCase())
          }),
          { numRuns: 40 },
        )
        useRecoverBackend('auto')
      })

      it('returns null, never throws, for invalid signatures', () => {
        useRecoverBackend(backend)
        const { r, s } = { r: BigInt(SIG.slice(0, 66)), s: BigInt('0x' + SIG.slice(66, 130)) }
        const v = Number.parseInt(SIG.slice(130), 16)
        const bad: unknown[] = [
          sigOf(r, N - s, v === 27 ? 28 : 27), // high-s twin: valid ECDSA, refused as non-canonical
          sigOf(0n, s, v),
          sigOf(r, 0n, v),
          sigOf(N, s, v),
          sigOf(r, N, v),
          sigOf(r, HALF_N + 1n, v),
          sigOf(5n, s, v), // no curve point with x = 5
          sigOf(r, s, 26),
          sigOf(r, s, 29),
          sigOf(r, s, 2),
          getBytes(SIG).subarray(0, 64),
          new Uint8Array(66),
          SIG.slice(0, 131),
          SIG + '0',
          SIG.replace('0x', '0X'),
          SIG.slice(0, 131) + 'z',
          undefined,
          null,
          42,
          {},
          [...getBytes(SIG)],
        ]
        for (const sig of bad) {
          assert.equal(recoverAddress(DIGEST, sig), null, String(sig))
          assert.equal(recoverMessageSigner(MESSAGE, sig), null)
        }
        assert.equal(recoverAddress(DIGEST.subarray(0, 31), SIG), null)
        assert.equal(recoverAddress('0x00' as unknown as Uint8Array, SIG), null)
        useRecoverBackend('auto')
      })

      it('accepts s = n/2 exactly and v = 0/1 aliases', () => {
        useRecoverBackend(backend)
        const b = getBytes(SIG).slice()
        b[64] = (b[64] as number) - 27
        assert.equal(recoverAddress(DIGEST, b), wallet.address.toLowerCase())
        assert.ok(parseSignature(sigOf(1n, HALF_N, 27)))
        assert.equal(parseSignature(sigOf(1n, HALF_N + 1n, 27)), null)
        useRecoverBackend('auto')
      })
    })
  }

  it('both backends agree on arbitrary 65-byte inputs', { skip: Boolean(nativeBackendError()) && 'no native backend' }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 65, maxLength: 65 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), (sig, digest, fixV) => {
        if (fixV) sig[64] = 27 + ((sig[64] as number) & 1)
        useRecoverBackend('native')
        const a = recoverAddress(digest, sig)
        useRecoverBackend('js')
        const b = recoverAddress(digest, sig)
        useRecoverBackend('auto')
        assert.equal(a, b)
      }),
      { numRuns: 200 },
    )
  })
})
