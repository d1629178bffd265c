/**
 * `audit forget <subject>`: the answer to an erasure request on an immutable trail. In every journal of the
 * data directory (the proxy's, and each cluster worker's), every line that mentions the subject (a client
 * address, or an IP address) is replaced by its redaction record `{ seq, t, redacted, redactedAt, erasure,
 * leaf, prev }`: the salt and every personal field are gone, the leaf and the chain link stay, so every
 * anchored root and every other entry's proof still verify. First, one erasure record (erasure.ts) is
 * appended to that journal, signed with the reporter key: when, on whose request, on what legal basis, a
 * salted commitment to the subject and every seq redacted. `audit verify` accepts a redaction only when
 * such a record covers it. Before any line is redacted, the scope index of every period concerned
 * (`<journal>/index/`, scope-index.ts) is stored if it was not, and every row whose key names the subject is
 * cut down to its keyHash and seqsDigest: the anchored index root stays computable, the key is gone. Then
 * the subject is scrubbed from the outbox (finished chain writes only) and from every other file in the
 * data directory; what could not be scrubbed is said.
 *
 * Needs the journal's and the outbox's locks (the proxy using this data directory must be stopped).
 * Refuses to redact a line whose content no longer matches its leaf: redaction must never launder tampering.
 * Interrupted after the erasure record was written, a second run completes the redactions it lists.
 */
import { isIP } from 'node:net'
import { getAddress, isAddress } from 'ethers'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { scrubOutbox, type OutboxScrub, type ReceiptLookup, type SubjectText } from '../chain/outbox-scrub.js'
import { FlytrapError } from '../errors.js'
import { replaceFile } from '../fs/durable.js'
import { encodeRecord, entryLeaf, parseRecord, PERSONAL_FIELDS, redact, type JournalEntry, type JournalRecord } from './entry.js'
import { commitSubject, readErasure, signErasure, type ErasureSigner, type RedactedRef } from './erasure.js'
import { openJournal } from './journal.js'
import { INDEX_DIR, journalDir, listSegments, periodBounds, periodOf, rangeIndex, readIndexRows, readLines, readMeta, storeIndexRows, type AnchoredRange } from './journal-files.js'
import { rowError, scrubRows, type IndexRow } from './scope-index.js'

export interface ForgetOptions {
  dataDir: string
  subject: string
  /** On whose request (recorded in the erasure record). */
  requestedBy: string
  /** The legal basis (recorded in the erasure record). */
  basis: string
  /** The reporter key: signs the erasure record. */
  signer: ErasureSigner
  /** Receipt lookup on the chain: without it, only outbox writes already recorded as done are scrubbed. */
  receipt?: ReceiptLookup
  now?: () => number
}

export interface JournalForget {
  /** The data directory of this journal (relative to the one given; '.' for itself). */
  dir: string
  /** Entries redacted now. */
  redacted: number
  /** The erasure record written now (its seq), if any; earlier ones whose redactions were completed. */
  erasureSeq: number | null
  completed: number[]
  /** Segment files rewritten. */
  segments: string[]
  /** Files of bytes cut off torn writes in which the subject was blanked out. */
  tornFiles: string[]
}

export interface ForgetResult {
  subject: string
  /** Entries redacted now, in all journals. */
  redacted: number
  journals: JournalForget[]
  /** The commitment recorded in the erasure records, and its salt (kept nowhere else: hand it to whoever must be able to prove which subject was erased). */
  commitment: { value: string; salt: string } | null
  signer: string
  outboxes: (OutboxScrub & { dir: string })[]
  /** Other files of the data directory the subject was scrubbed from (relative paths). */
  files: string[]
  /** What still holds the subject, or may. */
  notScrubbed: string[]
}

/** What a forget would touch, for the confirmation prompt (read-only, no locks). */
export interface ForgetPlan {
  subject: string
  journals: string[]
  entries: number
  /** Other files that mention the subject (relative paths). */
  files: string[]
}

export function validateSubject(subject: string): string {
  const s = subject.trim()
  if (isAddress(s) || isIP(s) !== 0) return s
  throw new FlytrapError(`"${subject}" is neither a client address (0x…) nor an IP address`, { exit: 'usage' })
}

/**
 * The subject's forms in text: an address anywhere as its 40 hex digits (so also left-padded to 32 bytes,
 * as ban subjects and calldata hold it), in any case; an IP address as a whole token. Blanking keeps lengths.
 */
export function subjectText(subject: string): SubjectText {
  const s: string = validateSubject(subject).toLowerCase()
  const re = isIP(s) === 0
    ? new RegExp(`()(${s.slice(2)})`, 'gi')
    : new RegExp(`(^|[^0-9a-z])(${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})(?=$|[^0-9a-z])`, 'gi')
  return {
    test: (text) => {
      re.lastIndex = 0
      return re.test(text)
    },
    blank: (text) => text.replace(re, (_m, pre: string, hit: string) => pre + 'x'.repeat(hit.length)),
  }
}

function mentions(entry: JournalEntry, s: SubjectText): boolean {
  for (const k of PERSONAL_FIELDS) {
    const v = entry[k]
    if (v !== undefined && s.test(v)) return true
  }
  return s.test(entry.reason)
}

/** Data directories holding a journal: the one given and its cluster workers' (worker-N). */
async function journalRoots(dataDir: string): Promise<string[]> {
  const roots = existsSync(journalDir(dataDir)) ? [dataDir] : []
  for (const name of (await readdir(dataDir).catch(() => [] as string[])).sort()) {
    if (/^worker-\d+$/.test(name) && existsSync(journalDir(join(dataDir, name)))) roots.push(join(dataDir, name))
  }
  if (roots.length === 0) {
    throw new FlytrapError(`no journal in ${journalDir(dataDir)}`, { exit: 'config', suggestions: ["pass the proxy's --data-dir (default .flytrap/proxy)"] })
  }
  return roots
}

/** Every file under dir, recursively (relative paths). */
async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = []
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, d.name)
    if (d.isDirectory()) out.push(...(await walk(p, base)))
    else if (d.isFile()) out.push(relative(base, p))
  }
  return out.sort()
}

const SEGMENT_FILE = /(^|\/)journal\/seg-\d{16}\.jsonl$/
const TORN_FILE = /(^|\/)journal\/seg-\d{16}\.jsonl\.torn-\d+$/
const OWN_FILE = /(^|\/)(journal\/LOCK|outbox\/outbox\.lock|outbox\/outbox\.jsonl)$/

export async function planForget(opts: { dataDir: string; subject: string }): Promise<ForgetPlan> {
  const s = subjectText(opts.subject)
  const roots = await journalRoots(opts.dataDir)
  let entries = 0
  for (const root of roots) {
    for (const seg of await listSegments(root)) {
      for await (const l of readLines(seg.path)) {
        try {
          const r = parseRecord(l.text)
          if (!r.redacted && mentions(r.entry, s)) entries++
        } catch {
          // damaged lines are blanked, not counted
        }
      }
    }
  }
  const files: string[] = []
  for (const f of await walk(opts.dataDir)) {
    if (SEGMENT_FILE.test(f) || /(^|\/)(LOCK|outbox\.lock)$/.test(f)) continue
    if (s.test(await readFile(join(opts.dataDir, f), 'latin1'))) files.push(f)
  }
  return { subject: validateSubject(opts.subject), journals: roots.map((r) => relative(opts.dataDir, r) || '.'), entries, files }
}

export async function forgetSubject(opts: ForgetOptions): Promise<ForgetResult> {
  const subject = validateSubject(opts.subject)
  const s = subjectText(subject)
  const requestedBy = opts.requestedBy.trim()
  const basis = opts.basis.trim()
  if (!basis) throw new FlytrapError('the legal basis of the erasure is required (--reason)', { exit: 'usage' })
  if (!requestedBy) throw new FlytrapError('say on whose request the erasure is made (--requested-by)', { exit: 'usage' })
  if (s.test(requestedBy) || s.test(basis)) {
    throw new FlytrapError('--requested-by and --reason go into the journal for good: they must not name the subject', { exit: 'usage' })
  }
  const roots = await journalRoots(opts.dataDir)
  const now = opts.now ?? Date.now
  const { commitment, salt } = commitSubject(subject)
  const result: ForgetResult = { subject, redacted: 0, journals: [], commitment: null, signer: getAddress(opts.signer.address), outboxes: [], files: [], notScrubbed: [] }

  for (const root of roots) {
    const jf = await forgetInJournal(root, s, { ...opts, requestedBy, basis, commitment, now })
    result.journals.push({ ...jf.result, dir: relative(opts.dataDir, root) || '.' })
    result.redacted += jf.result.redacted
    if (jf.result.erasureSeq !== null) result.commitment = { value: commitment, salt }
    result.notScrubbed.push(...jf.notScrubbed)
  }

  for (const root of [opts.dataDir, ...roots.filter((r) => r !== opts.dataDir)]) {
    const box = await scrubOutbox(join(root, 'outbox'), s, opts.receipt)
    if (!box) continue
    const dir = relative(opts.dataDir, join(root, 'outbox'))
    result.outboxes.push({ ...box, dir })
    for (const u of box.unsent) result.notScrubbed.push(`${dir}/outbox.jsonl: chain write ${u.id} (${u.method}) names the subject and is ${u.state}: it must still be sent; run audit forget again once it is mined`)
    if (box.removed.length > 0) result.notScrubbed.push(`the chain: ${box.removed.length} transaction(s) naming the subject (e.g. bans, sensitive-topic reports) were mined and cannot be erased from it`)
  }

  // Every other file of the data directory: head/meta, reporting state, torn bytes, logs, cluster files.
  for (const f of await walk(opts.dataDir)) {
    if (SEGMENT_FILE.test(f) || TORN_FILE.test(f) || OWN_FILE.test(f) || /\.tmp$/.test(f)) continue
    const path = join(opts.dataDir, f)
    const text = await readFile(path, 'latin1')
    if (!s.test(text)) continue
    await replaceFile(path, Buffer.from(scrubText(f, text, s), 'latin1'))
    result.files.push(f)
  }
  result.notScrubbed.push(
    "anything already on chain (ban subjects, sensitive-topic reports, anchored hashes): pseudonymous, public, and immutable",
    `copies outside ${opts.dataDir}: backups, shipped logs, the proxy's log output`,
  )
  if (isIP(subject) !== 0) result.notScrubbed.push('ban subjects that are keyed hashes of the IP address (--ban-key): pseudonymous without the key, left as they are')
  return result
}

/** A JSON file is scrubbed by its structure (members named by the subject removed, strings blanked); anything else as text. */
function scrubText(file: string, text: string, s: SubjectText): string {
  if (file.endsWith('.json')) {
    try {
      const value = JSON.parse(text) as unknown
      const walkJson = (v: unknown): unknown => {
        if (typeof v === 'string') return s.blank(v)
        if (Array.isArray(v)) return v.map(walkJson)
        if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !s.test(k)).map(([k, x]) => [k, walkJson(x)]))
        return v
      }
      const indent = /^\{\n(\s+)"/.exec(text)?.[1]?.length ?? 0
      return JSON.stringify(walkJson(value), null, indent || undefined) + (text.endsWith('\n') ? '\n' : '')
    } catch {
      // not JSON after all: as text
    }
  }
  return s.blank(text)
}

type Ctx = ForgetOptions & { commitment: string; now: () => number }

/**
 * Stores the index of every period holding a line about to be redacted (the ranges already stored, else
 * the journal's period), computed from the entries while they are in clear, and scrubs every stored index
 * (those periods and all others) of the rows whose key names the subject. Leaves and roots are unchanged.
 */
async function scrubIndexes(root: string, s: SubjectText, times: readonly number[], periodMs: number): Promise<void> {
  const dir = join(journalDir(root), INDEX_DIR)
  const stored: AnchoredRange[] = []
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)-(\d+)\.json$/.exec(name)
    if (m) stored.push({ fromTime: Number(m[1]), toTime: Number(m[2]) })
  }
  const fresh = new Map<string, AnchoredRange>()
  for (const t of times) {
    if (stored.some((r) => r.fromTime * 1000 <= t && t < r.toTime * 1000)) continue
    const b = periodBounds(periodOf(t, periodMs), periodMs)
    fresh.set(`${b.fromTime}-${b.toTime}`, { fromTime: b.fromTime, toTime: b.toTime })
  }
  for (const range of fresh.values()) await storeIndexRows(root, range, scrubRows((await rangeIndex(root, range)).rows, s.test))
  for (const range of stored) {
    const rows = await readIndexRows(root, range).catch(() => null)
    // A malformed file is verify's business; the generic scrub below blanks the subject in it as text.
    if (rows === null || rows.some((r) => rowError(r) !== null)) continue
    const scrubbed = scrubRows(rows as IndexRow[], s.test)
    if (scrubbed.some((r, i) => r !== rows[i])) await storeIndexRows(root, range, scrubbed)
  }
}

async function forgetInJournal(root: string, s: SubjectText, ctx: Ctx): Promise<{ result: Omit<JournalForget, 'dir'>; notScrubbed: string[] }> {
  const meta = readMeta(root)
  // The writer: takes the lock (a running proxy refuses us) and cuts a torn tail off, as a restart would.
  const journal = await openJournal({ dataDir: root, periodMs: meta?.periodMs, flushIntervalMs: 1 })
  const result: Omit<JournalForget, 'dir'> = { redacted: 0, erasureSeq: null, completed: [], segments: [], tornFiles: [] }
  const notScrubbed: string[] = []
  try {
    const segs = await listSegments(root)
    // ---- read: what mentions the subject, and what earlier erasure records list (to complete them)
    const listed = new Map<number, { erasure: number; at: number; ref: RedactedRef }>()
    const targets: RedactedRef[] = []
    for (const seg of segs) {
      for await (const l of readLines(seg.path)) {
        if (!l.terminated) continue
        let r: JournalRecord
        try {
          r = parseRecord(l.text)
        } catch {
          continue
        }
        if (r.redacted) continue
        if (r.entry.kind === 'erasure') {
          const got = readErasure(r.entry.erasure)
          if (got.ok && entryLeaf(r.salt, r.entry) === r.leaf) for (const ref of got.body.redacts) listed.set(ref[0], { erasure: r.seq, at: got.body.at, ref })
          if (s.test(JSON.stringify(r.entry.erasure))) notScrubbed.push(`${seg.name}:${l.lineNo}: erasure record seq ${r.seq} names the subject in its request or basis; it cannot be redacted (the redactions it covers would become holes)`)
          continue
        }
        if (!mentions(r.entry, s)) continue
        if (entryLeaf(r.salt, r.entry) !== r.leaf) {
          throw new FlytrapError(`${seg.name}:${l.lineNo}: entry seq ${r.seq} no longer matches its leaf; it will not be redacted (that would hide the tampering)`, {
            exit: 'verification',
            suggestions: ['run `flytrap audit verify` and resolve the tampering first'],
          })
        }
        targets.push([r.seq, r.t, r.leaf])
      }
    }
    const targetsT = new Map(targets.map((ref) => [ref[0], ref[1]]))
    // ---- the erasure record first: a crash before the rewrite leaves lines in clear, never an unexplained hole
    const plan = new Map<number, { at: number; erasure: number }>()
    const fresh: RedactedRef[] = []
    for (const ref of targets) {
      const old = listed.get(ref[0])
      if (old && old.ref[1] === ref[1] && old.ref[2] === ref[2]) {
        plan.set(ref[0], { at: old.at, erasure: old.erasure })
        if (!result.completed.includes(old.erasure)) result.completed.push(old.erasure)
      } else fresh.push(ref)
    }
    if (fresh.length > 0) {
      const at = ctx.now()
      const body = await signErasure(ctx.signer, { at, requestedBy: ctx.requestedBy, basis: ctx.basis, subjectCommitment: ctx.commitment, redacts: fresh })
      const appended = await journal.append({ kind: 'erasure', outcome: 'allow', reason: 'erasure', erasure: body as unknown as Record<string, unknown> })
      result.erasureSeq = appended.seq
      for (const ref of fresh) plan.set(ref[0], { at, erasure: appended.seq })
    }
    // ---- the scope indexes next, while the entries are still readable: no row may keep the subject's key
    await scrubIndexes(root, s, [...plan.keys()].map((seq) => targetsT.get(seq)!), journal.periodMs)
    // ---- then the segments, each replaced atomically
    for (const seg of segs) {
      const out: string[] = []
      let changed = 0
      let rawTail: string | null = null
      for await (const l of readLines(seg.path)) {
        if (!l.terminated) {
          rawTail = s.blank(l.text)
          if (rawTail !== l.text) changed++
          continue
        }
        let r: JournalRecord
        try {
          r = parseRecord(l.text)
        } catch {
          const text = s.blank(l.text) // a damaged line stays damaged (verify reports it), minus the subject
          if (text !== l.text) changed++
          out.push(text)
          continue
        }
        const p = plan.get(r.seq)
        if (!p || r.redacted) {
          out.push(l.text) // byte for byte
          continue
        }
        out.push(encodeRecord(redact(r, p.at, p.erasure)))
        changed++
        result.redacted++
      }
      if (changed === 0) continue
      await replaceFile(seg.path, out.map((x) => x + '\n').join('') + (rawTail ?? ''))
      result.segments.push(seg.name)
    }
    const dir = journalDir(root)
    for (const name of (await readdir(dir)).filter((n) => /\.torn-\d+$/.test(n))) {
      const file = join(dir, name)
      const text = await readFile(file, 'latin1')
      const scrubbed = s.blank(text)
      if (scrubbed === text) continue
      await replaceFile(file, Buffer.from(scrubbed, 'latin1'))
      result.tornFiles.push(name)
    }
  } finally {
    await journal.close()
  }
  return { result, notScrubbed }
}
