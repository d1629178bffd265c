/**
 * Erasure in the outbox (`audit forget`): removes a subject from `<dir>/outbox.jsonl`, whose intents carry
 * the ABI arguments of chain writes (ban subjects, sensitive-topic publishers and receivers) and whose
 * attempts carry signed raw transactions. A write that is finished (a `done` record, or a transaction of it
 * mined successfully) is no longer needed: all of its records go, only its dedupe key stays (so it is never
 * enqueued again). A write not mined yet must still be sent, so it is left exactly as it is, and reported.
 * Every other record naming the subject (an error text, say) is blanked. Takes the outbox's lock, so the
 * proxy using it must be stopped. Reads the record format outbox.ts writes.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { replaceFile, takePidLock } from '../fs/durable.js'
import { OUTBOX_FILE, OUTBOX_LOCK } from './outbox.js'

/** How forget recognises and blanks the subject in text. */
export interface SubjectText {
  test(text: string): boolean
  blank(text: string): string
}

/** A receipt lookup (the chain's provider): null when the transaction is not mined (or unknown). */
export type ReceiptLookup = (hash: string) => Promise<{ status: number | null } | null>

export interface OutboxScrub {
  file: string
  /** Finished writes naming the subject whose records were removed (intent ids). */
  removed: string[]
  /** Other records in which the subject was blanked. */
  blanked: number
  /** Writes naming the subject that must still be sent, left as they are. */
  unsent: { id: string; kind: string; method: string; state: 'not sent yet' | 'signed, not mined yet' | 'mined state unknown (no chain)' }[]
}

interface Line {
  text: string
  rec: Record<string, unknown> | null
}

export async function scrubOutbox(dir: string, subject: SubjectText, receipt?: ReceiptLookup): Promise<OutboxScrub | null> {
  const file = join(dir, OUTBOX_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  const unlock = takePidLock(join(dir, OUTBOX_LOCK), `the outbox in ${dir}`, 'stop the proxy using this data directory first')
  try {
    const lines: Line[] = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          const rec = JSON.parse(l) as unknown
          return { text: l, rec: rec && typeof rec === 'object' && !Array.isArray(rec) ? (rec as Record<string, unknown>) : null }
        } catch {
          return { text: l, rec: null }
        }
      })
    const idOf = (l: Line) => (l.rec && typeof l.rec.id === 'string' && l.rec.t !== 'key' && l.rec.t !== 'meta' ? l.rec.id : null)
    const byId = new Map<string, Line[]>()
    for (const l of lines) {
      const id = idOf(l)
      if (id !== null) byId.set(id, [...(byId.get(id) ?? []), l])
    }
    const out: OutboxScrub = { file, removed: [], blanked: 0, unsent: [] }
    const drop = new Set<Line>()
    const keep = new Set<Line>()
    const keys: string[] = []
    let maxId = -1
    for (const [id, recs] of byId) {
      if (/^\d+$/.test(id)) maxId = Math.max(maxId, Number(id))
      if (!recs.some((l) => subject.test(l.text))) continue
      const intent = recs.find((l) => l.rec!.t === 'intent')?.rec
      const hashes = recs.filter((l) => l.rec!.t === 'attempt' && typeof l.rec!.hash === 'string').map((l) => l.rec!.hash as string)
      let finished = recs.some((l) => l.rec!.t === 'done')
      let unknown = false
      for (const h of finished ? [] : hashes) {
        if (!receipt) {
          unknown = true
          break
        }
        if ((await receipt(h))?.status === 1) {
          finished = true
          break
        }
      }
      if (finished) {
        for (const l of recs) drop.add(l)
        if (intent && typeof intent.key === 'string') keys.push(subject.blank(intent.key))
        out.removed.push(id)
      } else {
        for (const l of recs) keep.add(l)
        out.unsent.push({ id, kind: String(intent?.kind ?? '?'), method: String(intent?.method ?? '?'), state: unknown ? 'mined state unknown (no chain)' : hashes.length > 0 ? 'signed, not mined yet' : 'not sent yet' })
      }
    }
    if (out.removed.length === 0 && ![...lines].some((l) => !keep.has(l) && subject.test(l.text))) return out
    const result: string[] = []
    // The id counter must not go back when the highest intents are removed.
    const meta = lines.find((l) => l.rec?.t === 'meta')?.rec
    const nextSeq = Math.max(typeof meta?.nextSeq === 'number' ? meta.nextSeq : 0, maxId + 1)
    result.push(JSON.stringify({ t: 'meta', nextSeq }))
    for (const l of lines) {
      if (drop.has(l) || l.rec?.t === 'meta') continue
      if (keep.has(l) || !subject.test(l.text)) {
        result.push(l.text)
        continue
      }
      result.push(subject.blank(l.text))
      out.blanked++
    }
    for (const key of keys) result.push(JSON.stringify({ t: 'key', key }))
    await replaceFile(file, result.join('\n') + '\n')
    return out
  } finally {
    unlock()
  }
}
