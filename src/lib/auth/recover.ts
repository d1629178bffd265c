/**
 * The one place that turns an EIP-191 ("personal_sign") message and a 65-byte signature into the address that
 * signed it. Everything else in src/lib/auth goes through here, so the signature rules live in one spot:
 *
 * - a signature is exactly 65 bytes `r ‖ s ‖ v`; `v` is 27 or 28 (0 and 1 are accepted as their aliases);
 * - `r` is in [1, n-1] and `s` in [1, n/2] (EIP-2 low-s: every wallet produces it, and it makes a signature
 *   the only valid encoding of itself);
 * - anything else is `null`, never an exception.
 *
 * Recovery dominates the cost of checking a credential. Two backends produce identical results:
 * - `native`: libsecp256k1 through the `secp256k1` package's N-API binding, loaded from the prebuilt binary the
 *   package ships (node-gyp-build finds `prebuilds/<platform>-<arch>/`), so it needs no install script.
 *   About 8,000 recoveries/s per core on the reference machine (see scripts/bench-verify.ts).
 * - `js`: ethers' `SigningKey.recoverPublicKey` (pure JS, @noble/curves), about 300-700/s per core. Used when the
 *   native binding cannot be loaded on this platform; `recoverBackend()` tells which one is active, so a caller
 *   can warn that the throughput target cannot be met.
 *
 * The `secp256k1` package's own entry point silently falls back to the `elliptic` library when its binding
 * fails; we load the binding directly (`secp256k1/bindings`) so that never happens behind our back.
 */
import { createRequire } from 'node:module'
import { hexBytes, keccak256, keccak256Hex } from '../crypto/keccak.js'

/** secp256k1 group order n, and n/2 for the EIP-2 low-s rule. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const HALF_N = N >> 1n

export type RecoverBackend = 'native' | 'js'

/** The subset of the `secp256k1` package's API we use (it ships no types). */
interface NativeSecp256k1 {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed?: boolean, output?: Uint8Array): Uint8Array
}

let nativeLib: NativeSecp256k1 | null | undefined
let nativeLoadError: string | undefined

function loadNative(): NativeSecp256k1 | null {
  if (nativeLib !== undefined) return nativeLib
  try {
    const require = createRequire(import.meta.url)
    const lib = require('secp256k1/bindings') as Partial<NativeSecp256k1>
    if (typeof lib.ecdsaRecover !== 'function') throw new Error('secp256k1/bindings has no ecdsaRecover')
    nativeLib = lib as NativeSecp256k1
  } catch (err) {
    nativeLib = null
    nativeLoadError = err instanceof Error ? err.message : String(err)
  }
  return nativeLib
}

let forced: RecoverBackend | undefined

/**
 * ethers' SigningKey, loaded only when the js backend runs: the verify worker threads then never load ethers
 * (about 20 MiB per thread).
 */
let signingKey: typeof import('ethers').SigningKey | undefined
function jsSigningKey(): typeof import('ethers').SigningKey {
  signingKey ??= (createRequire(import.meta.url)('ethers') as typeof import('ethers')).SigningKey
  return signingKey
}

/** The backend `recoverAddress` uses now: `native` when libsecp256k1 loaded, else `js`. */
export function recoverBackend(): RecoverBackend {
  if (forced) return forced
  return loadNative() ? 'native' : 'js'
}

/** Why the native backend is unavailable (undefined when it loaded, or has not been tried yet). */
export function nativeBackendError(): string | undefined {
  loadNative()
  return nativeLoadError
}

/**
 * Force a backend (tests and the benchmark compare both), or `'auto'` to go back to the default. Returns the
 * backend now in use. Asking for `native` where it cannot load throws, so a test cannot pass by accident.
 */
export function useRecoverBackend(backend: RecoverBackend | 'auto'): RecoverBackend {
  if (backend === 'native' && !loadNative()) {
    throw new Error(`native secp256k1 backend unavailable: ${nativeLoadError ?? 'unknown error'}`)
  }
  forced = backend === 'auto' ? undefined : backend
  return recoverBackend()
}

const EIP191_PREFIX = '\x19Ethereum Signed Message:\n'

/**
 * The EIP-191 version 0x45 digest that `personal_sign` / ethers `signMessage` sign:
 * `keccak256("\x19Ethereum Signed Message:\n" + byteLength(message) + message)`. A string is encoded as UTF-8
 * (lone surrogates become U+FFFD, as Buffer does; callers reject them before signing).
 */
export function eip191Digest(message: string | Uint8Array): Uint8Array {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message
  const prefix = Buffer.from(`${EIP191_PREFIX}${body.length}`, 'utf8')
  const buf = Buffer.allocUnsafe(prefix.length + body.length)
  prefix.copy(buf, 0)
  buf.set(body, prefix.length)
  return keccak256(buf)
}

/** A signature that passed the encoding rules above: 64 bytes `r ‖ s` and the recovery id 0 or 1. */
export interface ParsedSignature {
  compact: Uint8Array
  recid: 0 | 1
}

const HEX_SIG = /^0x[0-9a-fA-F]{130}$/

/**
 * Parse a 65-byte signature given as bytes or as a `0x` + 130 hex digit string. Returns null for a wrong
 * length, non-hex text, `v` not in {0, 1, 27, 28}, `r` or `s` zero or ≥ n, or `s` > n/2.
 */
export function parseSignature(sig: unknown): ParsedSignature | null {
  let bytes: Uint8Array
  if (typeof sig === 'string') {
    if (sig.length !== 132 || !HEX_SIG.test(sig)) return null
    bytes = Buffer.from(sig.slice(2), 'hex')
  } else if (sig instanceof Uint8Array) {
    if (sig.length !== 65) return null
    bytes = sig
  } else {
    return null
  }
  const v = bytes[64] as number
  let recid: 0 | 1
  if (v === 27 || v === 0) recid = 0
  else if (v === 28 || v === 1) recid = 1
  else return null
  const r = bytesToBigInt(bytes.subarray(0, 32))
  const s = bytesToBigInt(bytes.subarray(32, 64))
  if (r === 0n || r >= N || s === 0n || s > HALF_N) return null
  return { compact: new Uint8Array(bytes.subarray(0, 64)), recid }
}

function bytesToBigInt(b: Uint8Array): bigint {
  return BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'))
}

/** keccak256 of the 64-byte uncompressed public key (without the 0x04 prefix), last 20 bytes, lower-case hex. */
function pubkeyToAddress(uncompressed65: Uint8Array): string {
  return '0x' + keccak256Hex(uncompressed65.subarray(1)).slice(-40)
}

/**
 * Recover the signer of a 32-byte digest. Returns the address as `0x` + 40 LOWER-CASE hex digits (no EIP-55
 * checksum: comparing addresses does not need it and it would cost another keccak), or null when the signature
 * breaks the encoding rules or no public key can be recovered.
 */
export function recoverAddress(digest: Uint8Array, signature: unknown): string | null {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) return null
  const sig = parseSignature(signature)
  if (!sig) return null
  return recoverParsed(digest, sig)
}

function recoverParsed(digest: Uint8Array, sig: ParsedSignature): string | null {
  const native = forced === 'js' ? null : loadNative()
  try {
    if (native) return pubkeyToAddress(native.ecdsaRecover(sig.compact, sig.recid, digest, false))
    const sigHex = '0x' + Buffer.from(sig.compact).toString('hex') + (sig.recid === 0 ? '1b' : '1c')
    const pub = jsSigningKey().recoverPublicKey(digest, sigHex)
    return pubkeyToAddress(hexBytes(pub))
  } catch {
    // libsecp256k1 and noble both reject an r that is not the x of a curve point.
    return null
  }
}

/** Recover the signer of an EIP-191 message. Same result conventions as `recoverAddress`. */
export function recoverMessageSigner(message: string | Uint8Array, signature: unknown): string | null {
  const sig = parseSignature(signature)
  if (!sig) return null
  return recoverParsed(eip191Digest(message), sig)
}
