/**
 * Grant reasons on chain, in clear or as a salted commitment (docs/evidence.md, "Privacy model"). A reason
 * typed by a topic owner ("wearable of patient P-1") is public and permanent once sent in clear; a private
 * one goes on chain only as
 *
 *   commit:0x<keccak256(0x07 || salt || utf8(reason))>      salt = 32 random bytes, kept off chain
 *
 * (the 73-character string is the event's `reason`). The clear text and salt stay in the owner's
 * reasons.jsonl (config/reasons.ts) so an evidence bundle can disclose them and anyone can check them against
 * the commitment. Which chains are public: everything but local dev chains (31337, 1337) and the chain ids
 * an operator lists as permissioned. Pure: ethers only, no Node API.
 */
import { concat, hexlify, keccak256, randomBytes, toUtf8Bytes } from 'ethers'

export const REASON_COMMIT_TAG = '0x07'
export const REASON_COMMIT_PREFIX = 'commit:'
const COMMITTED = /^commit:(0x[0-9a-f]{64})$/
const HASH = /^0x[0-9a-fA-F]{64}$/

/** Local development chains (anvil, hardhat; ganache's 1337): nothing on them is public. */
export const LOCAL_CHAIN_IDS: readonly number[] = [31337, 1337]

export type ParsedReason = { committed: false; text: string } | { committed: true; commitment: string }

/** keccak256(0x07 || salt || utf8(reason)). */
export function reasonCommitment(salt: string, text: string): string {
  if (!HASH.test(salt)) throw new TypeError('reasonCommitment: the salt must be 32 bytes of hex')
  return keccak256(concat([REASON_COMMIT_TAG, salt, toUtf8Bytes(text)]))
}

/** A private reason: the string to send on chain, and what to keep off chain. */
export function commitReason(text: string, salt: string = hexlify(randomBytes(32))): { onChain: string; commitment: string; salt: string } {
  const commitment = reasonCommitment(salt, text)
  return { onChain: `${REASON_COMMIT_PREFIX}${commitment}`, commitment, salt: salt.toLowerCase() }
}

/** What an on-chain reason string is: clear text, or a commitment (exactly "commit:0x" + 64 lower-case hex). */
export function parseReason(onChain: string): ParsedReason {
  const m = COMMITTED.exec(onChain)
  return m ? { committed: true, commitment: m[1]! } : { committed: false, text: onChain }
}

/** Whether a disclosed (text, salt) opens the commitment. */
export function checkReason(commitment: string, salt: string, text: string): boolean {
  return HASH.test(salt) && HASH.test(commitment) && reasonCommitment(salt, text) === commitment.toLowerCase()
}

/** A disclosed reason, as reasons.jsonl keeps it (and a bundle carries it). */
export interface ReasonDisclosure {
  commitment: string
  salt: string
  text: string
}

/**
 * How a report shows an on-chain reason: clear text as it is; a commitment as "committed 0x…", or, when a
 * disclosure for it is known and checks, its text marked as committed and checked.
 */
export function displayReason(onChain: string, disclosures?: ReadonlyMap<string, ReasonDisclosure>): { reason: string; committed: boolean; disclosed: boolean } {
  const p = parseReason(onChain)
  if (!p.committed) return { reason: p.text, committed: false, disclosed: false }
  const d = disclosures?.get(p.commitment)
  if (d && checkReason(p.commitment, d.salt, d.text)) return { reason: `${d.text} [committed ${p.commitment}; disclosed, checks]`, committed: true, disclosed: true }
  return { reason: `[committed ${p.commitment}; not disclosed]`, committed: true, disclosed: false }
}

/** Whether what is sent to this chain is public: anything but local dev chains and the ones listed as permissioned. */
export function isPublicChain(chainId: number, permissioned: readonly number[] = []): boolean {
  return !LOCAL_CHAIN_IDS.includes(chainId) && !permissioned.includes(chainId)
}
