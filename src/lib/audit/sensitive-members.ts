/**
 * The per-address records behind one on-chain sensitive report, and the commitment that goes on chain instead
 * of the addresses (docs/evidence.md, "Privacy model"). For one sensitive topic and period:
 *
 *   record      = { address (lower-case 0x…), role: "publisher" | "receiver", count }
 *   salt        = keccak256(0x06 || s || utf8(role))     s = the journal salt of the first entry of the period
 *                                                        counted in this record (tally.ts keeps it)
 *   leaf        = keccak256(0x05 || salt || canonicalJSON(record))
 *   membersRoot = Merkle root (merkle.ts: 0x01 inner nodes, odd node promoted) of the leaves ordered by
 *                 (role, address): every "publisher" record before every "receiver" record, addresses
 *                 ascending as lower-case strings; 0x00…00 when there is none
 *
 * On chain: the counts of distinct publishers and receivers, their totals and membersRoot. The salt is
 * recomputable from the journal (whoever holds it can rebuild the period's records and root) but not by the
 * public: without it, nobody can test a guessed address and count against the root. An evidence bundle
 * discloses one address's records with their salts and Merkle proofs (recordProof / verifyRecord).
 * Pure and isomorphic: ethers and the shared tree rule only, no Node API.
 */
import { concat, getBytes, keccak256, toUtf8Bytes } from 'ethers'
import { canonicalJson } from './canonical-json.js'
import { EMPTY_ROOT, merkleProof, merkleRoot, verifyProof, type MerkleProof } from './merkle.js'

export type MemberRole = 'publisher' | 'receiver'

/** Domain tags: 0x00 journal leaves, 0x01 tree nodes, 0x05 member leaves, 0x06 member salts, 0x07 reason commitments. */
export const MEMBER_LEAF_TAG = '0x05'
export const MEMBER_SALT_TAG = '0x06'
const MAX_U32 = 2 ** 32 - 1
const HASH = /^0x[0-9a-fA-F]{64}$/
const ADDRESS = /^0x[0-9a-f]{40}$/

export interface MemberRecord {
  /** Lower-case 0x address. */
  address: string
  role: MemberRole
  /** Allowed publishes (publisher) or deliveries (receiver) in the period, capped at 2^32 - 1. */
  count: number
  /** This record's salt (memberSalt), disclosed only with the record. */
  salt: string
}

export interface MembersCommitment {
  /** Ordered by (role, address): the tree's leaf order. */
  records: MemberRecord[]
  /** What recordSensitive takes: distinct addresses and totals per role, and the root. */
  publishers: number
  published: number
  receivers: number
  received: number
  membersRoot: string
}

/** What the tally holds per sensitive topic (tally.ts SensitiveTally, or anything shaped like it). */
export interface MemberCounts {
  pub: ReadonlyMap<string, number>
  recv: ReadonlyMap<string, number>
  pubSalt: ReadonlyMap<string, string>
  recvSalt: ReadonlyMap<string, string>
}

/** salt = keccak256(0x06 || entrySalt || utf8(role)), entrySalt the journal salt of the record's first entry. */
export function memberSalt(entrySalt: string, role: MemberRole): string {
  if (!HASH.test(entrySalt)) throw new TypeError('memberSalt: the entry salt must be 32 bytes of hex')
  return keccak256(concat([MEMBER_SALT_TAG, entrySalt, toUtf8Bytes(role)]))
}

/** leaf = keccak256(0x05 || salt || canonicalJSON({ address, role, count })). */
export function memberLeaf(r: MemberRecord): string {
  if (!HASH.test(r.salt)) throw new TypeError('memberLeaf: the salt must be 32 bytes of hex')
  const body = canonicalJson({ address: r.address.toLowerCase(), role: r.role, count: r.count })
  return keccak256(concat([MEMBER_LEAF_TAG, getBytes(r.salt), toUtf8Bytes(body)]))
}

const ROLE_ORDER: Record<MemberRole, number> = { publisher: 0, receiver: 1 }

/** The tree's order: role (publisher first), then address as a lower-case string. */
export function compareRecords(a: Pick<MemberRecord, 'role' | 'address'>, b: Pick<MemberRecord, 'role' | 'address'>): number {
  const r = ROLE_ORDER[a.role] - ROLE_ORDER[b.role]
  if (r !== 0) return r
  const x = a.address.toLowerCase()
  const y = b.address.toLowerCase()
  return x < y ? -1 : x > y ? 1 : 0
}

/** The commitment of a list of records (any order; they are sorted, and the result carries them sorted). */
export function commitRecords(list: readonly MemberRecord[]): MembersCommitment {
  const records = list.map((r) => ({ ...r, address: r.address.toLowerCase() })).sort(compareRecords)
  for (let i = 1; i < records.length; i++) if (compareRecords(records[i - 1]!, records[i]!) === 0) throw new RangeError(`two records for ${records[i]!.role} ${records[i]!.address}`)
  const sum = (role: MemberRole) => records.filter((r) => r.role === role).reduce((n, r) => n + r.count, 0)
  return {
    records,
    publishers: records.filter((r) => r.role === 'publisher').length,
    published: Math.min(sum('publisher'), MAX_U32),
    receivers: records.filter((r) => r.role === 'receiver').length,
    received: Math.min(sum('receiver'), MAX_U32),
    membersRoot: records.length === 0 ? EMPTY_ROOT : merkleRoot(records.map(memberLeaf)),
  }
}

/**
 * The records of one topic's period from its tally (the journal's counts and first-entry salts) and their
 * commitment. A count without its first entry's salt (a tally built without salts) cannot be committed to.
 */
export function membersRecords(counts: MemberCounts): MembersCommitment {
  const list: MemberRecord[] = []
  const add = (role: MemberRole, m: ReadonlyMap<string, number>, salts: ReadonlyMap<string, string>) => {
    for (const [address, n] of m) {
      const s = salts.get(address)
      if (s === undefined) throw new RangeError(`no journal salt for ${role} ${address}: the tally was built without salts`)
      list.push({ address: address.toLowerCase(), role, count: Math.min(n, MAX_U32), salt: memberSalt(s, role) })
    }
  }
  add('publisher', counts.pub, counts.pubSalt)
  add('receiver', counts.recv, counts.recvSalt)
  return commitRecords(list)
}

/** One record disclosed: the record (with its salt) and its proof against membersRoot. */
export interface RecordDisclosure {
  record: MemberRecord
  proof: MerkleProof
}

/** The disclosures of one address's records (publisher and/or receiver) in a commitment; empty when it has none. */
export function recordProof(c: Pick<MembersCommitment, 'records'>, address: string): RecordDisclosure[] {
  const who = address.toLowerCase()
  const leaves = c.records.map(memberLeaf)
  const out: RecordDisclosure[] = []
  c.records.forEach((r, i) => {
    if (r.address === who) out.push({ record: r, proof: merkleProof(leaves, i) })
  })
  return out
}

/**
 * Checks a disclosed record against an on-chain membersRoot: well-formed, its leaf recomputed from content
 * and salt, and the proof's path (which also fixes its position) ends at the root.
 */
export function verifyRecord(d: RecordDisclosure, membersRoot: string): boolean {
  const r = d.record
  if (!r || (r.role !== 'publisher' && r.role !== 'receiver') || typeof r.address !== 'string' || !ADDRESS.test(r.address)) return false
  if (!Number.isSafeInteger(r.count) || r.count < 1 || r.count > MAX_U32 || typeof r.salt !== 'string' || !HASH.test(r.salt)) return false
  if (!HASH.test(membersRoot) || membersRoot.toLowerCase() === EMPTY_ROOT) return false
  return verifyProof(memberLeaf(r), d.proof, membersRoot)
}
