/**
 * The Merkle tree over one period's leaves, in seq order (not sorted: the position of an entry is part of
 * what is proven). Built level by level: pairs (0,1), (2,3) … are hashed as
 * `keccak256(0x01 || left || right)`; an odd last node is promoted unchanged to the next level. Leaves are
 * already domain-separated with a 0x00 prefix (entry.ts), so an inner node can never pass for a leaf.
 *
 * The root of n leaves equals folding, right to left, the roots of the perfect subtrees given by the
 * binary digits of n (a Merkle mountain range "bagged" from the right), so MerkleAccumulator computes it
 * with O(log n) memory while entries are appended.
 */
import { ZeroHash } from 'ethers'
import { hexBytes, keccak256Hex } from '../crypto/keccak.js'

/** Root of an empty period. Never a real root (that would need a keccak pre-image of zero). */
export const EMPTY_ROOT = ZeroHash

const NODE_TAG = new Uint8Array([0x01])

/** keccak256(0x01 || left || right); plain Uint8Array (no Buffer) so proofs also check in a browser. */
export function nodeHash(left: string, right: string): string {
  const l = hexBytes(left)
  const r = hexBytes(right)
  if (l.length === 32 && r.length === 32) return keccak256Hex(NODE_TAG, l, r)
  // Not 32 bytes (a malformed proof): each still goes into its own 32-byte slot, as it always did.
  const b = new Uint8Array(65)
  b[0] = 0x01
  b.set(l, 1)
  b.set(r, 33)
  return keccak256Hex(b)
}

export function merkleRoot(leaves: readonly string[]): string {
  if (leaves.length === 0) return EMPTY_ROOT
  let level = leaves.slice()
  while (level.length > 1) level = nextLevel(level)
  return level[0]!
}

function nextLevel(level: readonly string[]): string[] {
  const up: string[] = []
  for (let i = 0; i < level.length; i += 2) up.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!)
  return up
}

/** An inclusion proof: the leaf's position, the tree size and the siblings from the leaf up. */
export interface MerkleProof {
  index: number
  count: number
  siblings: string[]
}

export function merkleProof(leaves: readonly string[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length}`)
  const siblings: string[] = []
  let level = leaves.slice()
  let i = index
  while (level.length > 1) {
    const sibling = i % 2 === 1 ? i - 1 : i + 1
    if (sibling < level.length) siblings.push(level[sibling]!)
    level = nextLevel(level)
    i = Math.floor(i / 2)
  }
  return { index, count: leaves.length, siblings }
}

/** Checks a proof; the sides come from index and count, so a proof also fixes the entry's position. */
export function verifyProof(leaf: string, proof: MerkleProof, root: string): boolean {
  const { index, count, siblings } = proof
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) return false
  let h = leaf.toLowerCase()
  let i = index
  let n = count
  let s = 0
  while (n > 1) {
    if (i % 2 === 1) {
      const sib = siblings[s++]
      if (sib === undefined) return false
      h = nodeHash(sib, h)
    } else if (i + 1 < n) {
      const sib = siblings[s++]
      if (sib === undefined) return false
      h = nodeHash(h, sib)
    }
    i = Math.floor(i / 2)
    n = Math.ceil(n / 2)
  }
  return s === siblings.length && h === root.toLowerCase()
}

/** The root of a growing list of leaves in O(log n) memory; root() equals merkleRoot(all leaves pushed). */
export class MerkleAccumulator {
  private peaks: { height: number; hash: string }[] = []
  private n = 0

  get count(): number {
    return this.n
  }

  push(leaf: string): void {
    let hash = leaf
    let height = 0
    let top = this.peaks[this.peaks.length - 1]
    while (top !== undefined && top.height === height) {
      hash = nodeHash(top.hash, hash)
      height++
      this.peaks.pop()
      top = this.peaks[this.peaks.length - 1]
    }
    this.peaks.push({ height, hash })
    this.n++
  }

  root(): string {
    if (this.peaks.length === 0) return EMPTY_ROOT
    let acc = this.peaks[this.peaks.length - 1]!.hash
    for (let i = this.peaks.length - 2; i >= 0; i--) acc = nodeHash(this.peaks[i]!.hash, acc)
    return acc
  }
}
