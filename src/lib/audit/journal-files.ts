/**
 * The journal's files and every read-only query over them: the directory layout (segments, head.json,
 * meta.json, LOCK, index/), period arithmetic, reading lines and records, roots, proofs and scope indexes of
 * a time range. Used by verify, report, forget and the auditor UI, which never need the writer (journal.ts).
 * The one write here, storeIndexRows, is the scope index of an anchored range (anchoring and forget).
 */
import { mkdir, open, readdir, readFile } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { replaceFile, syncDir } from '../fs/durable.js'
import { chainNext, parseRecord, provenLeaf, RecordError, type JournalRecord } from './entry.js'
import { MerkleAccumulator, merkleProof, merkleRoot, type MerkleProof } from './merkle.js'
import { buildScopeIndex, encodeRows, indexRootOfRows, rowError, type IndexRow, type ScopeIndex } from './scope-index.js'
import { emptyTally, tallyEntry, type PeriodTally } from './tally.js'
/** A proof that one entry is in the tree of a time range (a period or an anchor's range). */
export interface EntryProof extends MerkleProof {
  seq: number
  leaf: string
  root: string
  fromTime: number
  toTime: number
}

export interface SegmentInfo {
  name: string
  path: string
  firstSeq: number
}

export interface LineAt {
  lineNo: number
  /** Byte offset of the line's first byte, and of the byte after its newline. */
  offset: number
  end: number
  text: string
  /** False for a last line without its newline (a torn or in-progress write). */
  terminated: boolean
}

export interface RecordAt {
  file: string
  line: number
  record: JournalRecord
}

export interface RangeRoot {
  fromMs: number
  toMs: number
  root: string
  count: number
  firstSeq: number | null
  lastSeq: number | null
  /** The hash-chain value before the range's first entry and after its last (null when the range is empty). */
  prevChain: string | null
  chain: string | null
}

const SEGMENT = /^seg-(\d{16})\.jsonl$/
export const LOCK = 'LOCK'
export const HEAD = 'head.json'
export const META = 'meta.json'

export function journalDir(dataDir: string): string {
  return join(dataDir, 'journal')
}

export function segmentName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.jsonl`
}

/** The first seq a segment file name promises, or null for anything that is not a segment. */
export function parseSegmentName(name: string): number | null {
  const m = SEGMENT.exec(name)
  return m ? Number(m[1]) : null
}

export function periodOf(tMs: number, periodMs: number): number {
  return Math.floor(tMs / periodMs)
}

export function periodBounds(k: number, periodMs: number): { fromMs: number; toMs: number; fromTime: number; toTime: number } {
  const fromMs = k * periodMs
  const toMs = (k + 1) * periodMs
  return { fromMs, toMs, fromTime: Math.floor(fromMs / 1000), toTime: Math.floor(toMs / 1000) }
}

export async function listSegments(dataDir: string): Promise<SegmentInfo[]> {
  const dir = journalDir(dataDir)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names
    .map((name) => ({ name, path: join(dir, name), firstSeq: parseSegmentName(name) }))
    .filter((s): s is SegmentInfo => s.firstSeq !== null)
    .sort((a, b) => a.firstSeq - b.firstSeq)
}

/** Lines of a file with byte offsets, streamed (segments can be large). */
export async function* readLines(path: string): AsyncGenerator<LineAt> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    let carry = Buffer.alloc(0)
    let pos = 0
    let lineStart = 0
    let lineNo = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
      if (bytesRead === 0) break
      pos += bytesRead
      const chunk = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead)
      let from = 0
      for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
        lineNo++
        const end = lineStart + (nl - from) + 1
        const line: LineAt = { lineNo, offset: lineStart, end, text: chunk.toString('utf8', from, nl), terminated: true }
        lineStart = end
        from = nl + 1
        yield line
      }
      carry = Buffer.from(chunk.subarray(from))
    }
    if (carry.length > 0) yield { lineNo: lineNo + 1, offset: lineStart, end: lineStart + carry.length, text: carry.toString('utf8'), terminated: false }
  } finally {
    await fh.close()
  }
}

/** The first valid record of a segment, or null when it has none. */
export async function firstRecord(path: string): Promise<JournalRecord | null> {
  for await (const l of readLines(path)) {
    if (!l.terminated) return null
    try {
      return parseRecord(l.text)
    } catch {
      return null
    }
  }
  return null
}

/**
 * Segments that can hold entries with t in [fromMs, toMs). Times never decrease along the journal, so
 * segment i covers [first t of i, first t of i+1]. Segments whose first line cannot be read are kept.
 */
export async function segmentsForRange(dataDir: string, fromMs = -Infinity, toMs = Infinity): Promise<SegmentInfo[]> {
  const all = await listSegments(dataDir)
  if (fromMs === -Infinity && toMs === Infinity) return all
  const firstT = await Promise.all(all.map(async (s) => (await firstRecord(s.path))?.t ?? null))
  return all.filter((_, i) => {
    const start = firstT[i]
    if (start !== null && start !== undefined && start >= toMs) return false
    for (let j = i + 1; j < all.length; j++) {
      const next = firstT[j]
      if (next !== null && next !== undefined) return next >= fromMs
    }
    return true
  })
}

/**
 * Valid records with t in [fromMs, toMs), in journal order. Lines that are not valid records are skipped
 * and passed to onInvalid (a torn last line included); `audit verify` is what judges them.
 */
export async function* readRecords(
  dataDir: string,
  opts: { fromMs?: number; toMs?: number; onInvalid?: (file: string, line: LineAt, why: string) => void } = {},
): AsyncGenerator<RecordAt> {
  const fromMs = opts.fromMs ?? -Infinity
  const toMs = opts.toMs ?? Infinity
  for (const seg of await segmentsForRange(dataDir, fromMs, toMs)) {
    for await (const l of readLines(seg.path)) {
      if (!l.terminated) {
        opts.onInvalid?.(seg.name, l, 'unterminated last line')
        continue
      }
      let record: JournalRecord
      try {
        record = parseRecord(l.text)
      } catch (err) {
        opts.onInvalid?.(seg.name, l, err instanceof RecordError ? err.message : String(err))
        continue
      }
      if (record.t >= fromMs && record.t < toMs) yield { file: seg.name, line: l.lineNo, record }
    }
  }
}

/**
 * Merkle roots over arbitrary time ranges (periods, or the ranges anchors name), in one pass. `leaf`:
 * 'stored' uses the leaf written on each line (what the writer committed to), 'proven' recomputes it
 * from the content (what verification needs: a changed field then changes the root).
 */
export async function rangeRoots(dataDir: string, ranges: readonly { fromMs: number; toMs: number }[], opts: { leaf?: 'stored' | 'proven' } = {}): Promise<RangeRoot[]> {
  const acc = ranges.map(() => ({ tree: new MerkleAccumulator(), firstSeq: null as number | null, lastSeq: null as number | null, prevChain: null as string | null, chain: null as string | null }))
  if (ranges.length > 0) {
    const fromMs = Math.min(...ranges.map((r) => r.fromMs))
    const toMs = Math.max(...ranges.map((r) => r.toMs))
    for await (const { record } of readRecords(dataDir, { fromMs, toMs })) {
      const leaf = opts.leaf === 'proven' ? provenLeaf(record) : record.leaf
      ranges.forEach((r, i) => {
        if (record.t < r.fromMs || record.t >= r.toMs) return
        const a = acc[i]!
        a.tree.push(leaf)
        a.firstSeq ??= record.seq
        a.prevChain ??= record.prev
        a.lastSeq = record.seq
        a.chain = chainNext(record.prev, record.leaf)
      })
    }
  }
  return ranges.map((r, i) => {
    const a = acc[i]!
    return { fromMs: r.fromMs, toMs: r.toMs, root: a.tree.root(), count: a.tree.count, firstSeq: a.firstSeq, lastSeq: a.lastSeq, prevChain: a.prevChain, chain: a.chain }
  })
}

/** The reportable counts (tally.ts) of the entries with t in [fromMs, toMs); redacted lines count nowhere. */
export async function rangeTally(dataDir: string, fromMs: number, toMs: number): Promise<PeriodTally> {
  const tally = emptyTally()
  for await (const { record } of readRecords(dataDir, { fromMs, toMs })) if (!record.redacted) tallyEntry(tally, record.entry)
  return tally
}

/** Where an entry is, or null. */
export async function findRecord(dataDir: string, seq: number): Promise<RecordAt | null> {
  const segs = await listSegments(dataDir)
  let seg: SegmentInfo | undefined
  for (const s of segs) if (s.firstSeq <= seq) seg = s
  if (!seg) return null
  for await (const l of readLines(seg.path)) {
    if (!l.terminated) continue
    try {
      const record = parseRecord(l.text)
      if (record.seq === seq) return { file: seg.name, line: l.lineNo, record }
    } catch {
      // a damaged line is verify's business
    }
  }
  return null
}

/** Inclusion proof of entry `seq` in the tree of the range [fromMs, toMs) that contains it. */
export async function rangeProof(dataDir: string, seq: number, fromMs: number, toMs: number, opts: { leaf?: 'stored' | 'proven' } = {}): Promise<EntryProof | null> {
  const leaves: string[] = []
  let index = -1
  for await (const { record } of readRecords(dataDir, { fromMs, toMs })) {
    if (record.seq === seq) index = leaves.length
    leaves.push(opts.leaf === 'proven' ? provenLeaf(record) : record.leaf)
  }
  if (index < 0) return null
  const proof = merkleProof(leaves, index)
  const root = merkleRoot(leaves)
  return { ...proof, seq, leaf: leaves[index]!, root, fromTime: Math.floor(fromMs / 1000), toTime: Math.floor(toMs / 1000) }
}

// ------------------------------------------------------------------ scope indexes of anchored ranges

/** An anchored range, in unix seconds, half-open: what an Anchored event names. */
export interface AnchoredRange {
  fromTime: number
  toTime: number
}

export const INDEX_DIR = 'index'

/** `<journal>/index/<fromTime>-<toTime>.json`: the rows of the scope index anchored for that range. */
export function indexPath(dataDir: string, range: AnchoredRange): string {
  return join(journalDir(dataDir), INDEX_DIR, `${range.fromTime}-${range.toTime}.json`)
}

/** The records of a range, as one array (a period's worth: what its index and checks need). */
export async function rangeRecords(dataDir: string, fromMs: number, toMs: number): Promise<JournalRecord[]> {
  const out: JournalRecord[] = []
  for await (const { record } of readRecords(dataDir, { fromMs, toMs })) out.push(record)
  return out
}

/** The scope index recomputed from the range's records (redacted lines contribute nothing). */
export async function rangeIndex(dataDir: string, range: AnchoredRange): Promise<ScopeIndex> {
  return buildScopeIndex(await rangeRecords(dataDir, range.fromTime * 1000, range.toTime * 1000))
}

/**
 * The stored rows of a range as parsed JSON, unchecked (verify judges them: checkIndex), or null when
 * there is no file. Throws when the file exists but is not a JSON array.
 */
export async function readIndexRows(dataDir: string, range: AnchoredRange): Promise<unknown[] | null> {
  const path = indexPath(dataDir, range)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  const rows = JSON.parse(text) as unknown
  if (!Array.isArray(rows)) throw new Error(`${path}: not a JSON array`)
  return rows
}

/**
 * The scope index of an anchored range for whoever builds evidence from it: the stored rows when there is a
 * file (after `audit forget` some rows carry only keyHash and seqsDigest), else recomputed from the entries.
 * Read-only; a malformed stored row is an error (run `audit verify`).
 */
export async function periodIndex(dataDir: string, range: AnchoredRange): Promise<ScopeIndex> {
  const stored = await readIndexRows(dataDir, range)
  if (stored === null) return rangeIndex(dataDir, range)
  stored.forEach((r, i) => {
    const err = rowError(r)
    if (err !== null) throw new Error(`${indexPath(dataDir, range)}: row ${i}: ${err}`)
  })
  const rows = stored as IndexRow[]
  return { rows, root: indexRootOfRows(rows) }
}

/** Writes a range's index rows durably (atomic replace; the index directory is created and synced once). */
export async function storeIndexRows(dataDir: string, range: AnchoredRange, rows: readonly IndexRow[]): Promise<void> {
  const dir = join(journalDir(dataDir), INDEX_DIR)
  if (!existsSync(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await syncDir(journalDir(dataDir))
  }
  await replaceFile(indexPath(dataDir, range), encodeRows(rows))
}

// ------------------------------------------------------------------ small files next to the segments

export interface JournalHead {
  /** Last seq and chain value when the journal was last closed cleanly (or rotated). */
  seq: number
  chain: string
  t: number
  segment: string
}

export interface JournalMeta {
  version: 1
  periodMs: number
  /** The reporter address this proxy anchors with, when the anchoring side recorded it (informational: verification never trusts it). */
  reporter?: string
}

export function readHead(dataDir: string): JournalHead | null {
  return readJsonFile<JournalHead>(join(journalDir(dataDir), HEAD))
}

export function readMeta(dataDir: string): JournalMeta | null {
  return readJsonFile<JournalMeta>(join(journalDir(dataDir), META))
}

function readJsonFile<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch {
    return null
  }
}
