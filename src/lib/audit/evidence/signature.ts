/**
 * The evidence bundle's signature, by the reporter key, in the scheme erasure records use (erasure.ts):
 *
 *   digest    = keccak256(utf8("FlyTrap evidence bundle v1\n") || utf8(canonicalJSON(bundle without "signature")))
 *   signature = personal_sign(digest)        EIP-191: the 32 digest bytes are the message
 *
 * Pure and isomorphic (ethers only).
 */
import { getAddress, getBytes, keccak256, toUtf8Bytes, verifyMessage } from 'ethers'
import { canonicalJson } from '../entry.js'
import type { ErasureSigner } from '../erasure.js'
import type { EvidenceBundle, UnsignedBundle } from './format.js'

export const BUNDLE_DOMAIN = 'FlyTrap evidence bundle v1\n'

/** The digest the reporter signs: every field of the bundle except `signature`, canonically encoded. */
export function bundleDigest(bundle: UnsignedBundle & { signature?: string }): string {
  const { signature: _sig, ...signed } = bundle
  return keccak256(toUtf8Bytes(BUNDLE_DOMAIN + canonicalJson(signed)))
}

/** Signs a bundle; `signer` is set to the key's address first (it is part of what is signed). */
export async function signBundle(signer: ErasureSigner, bundle: Omit<UnsignedBundle, 'signer'>): Promise<EvidenceBundle> {
  const unsigned: UnsignedBundle = { ...bundle, signer: getAddress(signer.address) }
  const signature = await signer.signMessage(getBytes(bundleDigest(unsigned)))
  return { ...unsigned, signature }
}

/** The address the signature recovers to, or null when it does not recover at all. */
export function recoverBundleSigner(bundle: EvidenceBundle): string | null {
  try {
    return getAddress(verifyMessage(getBytes(bundleDigest(bundle)), bundle.signature))
  } catch {
    return null
  }
}
