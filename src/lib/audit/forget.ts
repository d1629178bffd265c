/**
 * `audit forget <address>`: the answer to an erasure request on an immutable trail. Every journal line
 * that mentions the subject (a client address, or an IP address) is replaced by its redaction record
 * `{ seq, t, redacted: true, redactedAt, leaf, prev }`: the salt and every personal field are gone, the
 * leaf and the chain link stay, so every anchored root and every other entry's proof still verify. The
 * salt was random and is deleted, so the leaf cannot be used to confirm a guess of the content.
 *
 * Needs the journal's lock (the proxy using this data directory must be stopped). Refuses to redact a
 * line whose content no longer matches its leaf: redaction must never launder tampering.
 */
import { isIP } from 'node:net'
import { isAddress } from 'ethers'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FlytrapError } from '../errors.js'
import { replaceFile } from '../fs/durable.js'
import { encodeRecord, entryLeaf, mentionsSubject, parseRecord, redact, type JournalRecord } from './entry.js'
import { acquireLock } from './journal.js'
import { journalDir, listSegments, readLines } from './journal-files.js'

export interface ForgetResult {
  subject: string
  /** Entries redacted now. */
  redacted: number
  /** Segment files rewritten. */
  segments: string[]
  /** Files of bytes cut off torn writes in which the subject was blanked out. */
  tornFiles: string[]
}

export function validateSubject(subject: string): string {
  const s = subject.trim()
  if (isAddress(s) || isIP(s) !== 0) return s
  throw new FlytrapError(`"${subject}" is neither a client address (0x…) nor an IP address`, { exit: 'usage' })
}

export async function forgetSubject(opts: { dataDir: string; subject: string; now?: () => number }): Promise<ForgetResult> {
  const subject = validateSubject(opts.subject)
  const dir = journalDir(opts.dataDir)
  try {
    await readdir(dir)
  } catch {
    throw new FlytrapError(`no journal in ${dir}`, { exit: 'config', suggestions: ["pass the proxy's --data-dir (default .flytrap/proxy)"] })
  }
  const unlock = acquireLock(opts.dataDir)
  try {
    const matches = mentionsSubject(subject)
    const at = (opts.now ?? Date.now)()
    const blank = blanker(subject)
    const result: ForgetResult = { subject, redacted: 0, segments: [], tornFiles: [] }
    for (const seg of await listSegments(opts.dataDir)) {
      const out: string[] = []
      let changed = 0
      let rawTail: string | null = null
      for await (const l of readLines(seg.path)) {
        if (!l.terminated) {
          // A torn tail (the proxy reopens and cuts it): blank the subject out of it as well.
          rawTail = blank(l.text)
          if (rawTail !== l.text) changed++
          continue
        }
        let r: JournalRecord
        try {
          r = parseRecord(l.text)
        } catch {
          const text = blank(l.text) // a damaged line stays damaged (verify reports it), minus the subject
          if (text !== l.text) changed++
          out.push(text)
          continue
        }
        if (r.redacted || !matches(r.entry)) {
          out.push(l.text) // byte for byte
          continue
        }
        if (entryLeaf(r.salt, r.entry) !== r.leaf) {
          throw new FlytrapError(`${seg.name}:${l.lineNo}: entry seq ${r.seq} no longer matches its leaf; it will not be redacted (that would hide the tampering)`, {
            exit: 'verification',
            suggestions: ['run `flytrap audit verify` and resolve the tampering first'],
          })
        }
        out.push(encodeRecord(redact(r, at)))
        changed++
        result.redacted++
      }
      if (changed === 0) continue
      await replaceFile(seg.path, out.map((x) => x + '\n').join('') + (rawTail ?? ''))
      result.segments.push(seg.name)
    }
    for (const name of (await readdir(dir)).filter((n) => /\.torn-\d+$/.test(n))) {
      const file = join(dir, name)
      const text = await readFile(file, 'latin1')
      const scrubbed = blank(text)
      if (scrubbed === text) continue
      await replaceFile(file, Buffer.from(scrubbed, 'latin1'))
      result.tornFiles.push(name)
    }
    return result
  } finally {
    unlock()
  }
}

/** Replaces every whole-token occurrence of the subject (any case) with the same number of 'x'. */
function blanker(subject: string): (text: string) => string {
  const escaped = subject.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`(^|[^0-9a-z])(${escaped})(?=$|[^0-9a-z])`, 'gi')
  return (text) => text.replace(re, (_m, pre: string, hit: string) => pre + 'x'.repeat(hit.length))
}

