/**
 * Device credentials in bulk for the load generators: a fresh key per device, the v1 credential signed with
 * libsecp256k1 (the JS signer would dominate generating 10,000 of them).
 */
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { computeAddress, hexlify } from 'ethers'
import { credentialMessage, toUserProperties } from '../auth/index.js'
import { eip191Digest } from '../auth/recover.js'

interface Native {
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array; recid: number }
}
const native = createRequire(import.meta.url)('secp256k1') as Native

/** A new device key's client id and CONNECT user properties, valid for an hour. */
export function fastCredential(deployment: { chainId: bigint; contract: string }, clientId: string): { clientId: string; address: string; props: Record<string, string> } {
  const key = randomBytes(32)
  const expiresAt = Math.floor(Date.now() / 1000) + 3600
  const digest = eip191Digest(credentialMessage({ chainId: deployment.chainId, contract: deployment.contract, clientId, expiresAt }))
  const { signature, recid } = native.ecdsaSign(digest, key)
  const sig = hexlify(Buffer.concat([Buffer.from(signature), Buffer.from([27 + recid])]))
  const address = computeAddress(hexlify(key))
  return { clientId, address, props: toUserProperties({ address, expiresAt, signature: sig }) }
}
