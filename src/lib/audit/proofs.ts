/**
 * Per-entry proof for reports: is THIS entry's content in the tree whose root a registered reporter anchored
 * for its range? For each anchor, the range's leaves are read from the journal once (the stored leaves, the
 * tree as it was written), every entry of interest gets its inclusion path from them, and the path is checked
 * with verifyProof starting from the leaf recomputed from the entry's content against the anchored root. An
 * entry edited on disk then fails on its own (its recomputed leaf is not the committed one), a journal whose
 * range was rewritten fails for all, and "an anchor covers this time" is never enough.
 */
import { provenLeaf, type JournalRecord } from './entry.js'
import { readRecords } from './journal-files.js'
import { nodeHash, verifyProof, type MerkleProof } from './merkle.js'

/** What proveEntries needs of an anchor (verify.ts's AnchorRecord is one). */
export interface AnchorLike {
  fromTime: number
  toTime: number
  count: number
  root: string
  txHash: string
  blockNumber: number
}

export interface EntryProofCheck {
  /** The entry's proof leads from its content to the root of an anchor of its range, and the counts agree. */
  proven: boolean
  /** The anchor that proves it (or the first one of its range that did not), null when none covers it. */
  anchor: AnchorLike | null
  proof: MerkleProof | null
}

/** Every level of the tree (merkle.ts's shape: an odd last node goes up unchanged). */
function levels(leaves: readonly string[]): string[][] {
  const out: string[][] = [leaves.slice()]
  while (out[out.length - 1]!.length > 1) {
    const level = out[out.length - 1]!
    const up: string[] = []
    for (let i = 0; i < level.length; i += 2) up.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!)
    out.push(up)
  }
  return out
}

function pathOf(tree: string[][], index: number): MerkleProof {
  const siblings: string[] = []
  let i = index
  for (let l = 0; l < tree.length - 1; l++) {
    const sibling = i % 2 === 1 ? i - 1 : i + 1
    if (sibling < tree[l]!.length) siblings.push(tree[l]![sibling]!)
    i = Math.floor(i / 2)
  }
  return { index, count: tree[0]!.length, siblings }
}

/**
 * Checks the entries `seqs` (with t in [fromMs, toMs)) against `anchors` (registered reporters' anchors of
 * this journal, from the chain). Returns seq → check; entries no anchor covers are `proven: false, anchor: null`.
 */
export async function proveEntries(dataDir: string, anchors: readonly AnchorLike[], wanted: ReadonlyMap<number, number>): Promise<Map<number, EntryProofCheck>> {
  const out = new Map<number, EntryProofCheck>()
  for (const [seq] of wanted) out.set(seq, { proven: false, anchor: null, proof: null })
  const times = [...wanted.values()]
  if (times.length === 0) return out
  const lo = Math.min(...times)
  const hi = Math.max(...times)
  for (const a of anchors) {
    const fromMs = a.fromTime * 1000
    const toMs = a.toTime * 1000
    if (toMs <= lo || fromMs > hi) continue
    const records: JournalRecord[] = []
    for await (const { record } of readRecords(dataDir, { fromMs, toMs })) records.push(record)
    const tree = levels(records.map((r) => r.leaf))
    const root = tree[tree.length - 1]?.[0]
    records.forEach((r, index) => {
      const have = out.get(r.seq)
      if (!have || have.proven || !wanted.has(r.seq)) return
      const proof = pathOf(tree, index)
      const proven = root !== undefined && records.length === a.count && verifyProof(provenLeaf(r), proof, a.root)
      if (proven || have.anchor === null) out.set(r.seq, { proven, anchor: a, proof })
    })
  }
  return out
}
