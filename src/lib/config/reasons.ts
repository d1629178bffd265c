/**
 * The owner's private grant reasons, off chain: `<config dir>/reasons.jsonl` (`.flytrap/reasons.jsonl`, or
 * `$FLYTRAP_HOME/reasons.jsonl`), one JSON line per `--reason-private` reason: { v, commitment, salt, text,
 * chainId, contract, topic, client, action, at }. A line is appended and fsync'd (file and directory)
 * before the transaction carrying its commitment is sent, so a commitment on chain always has its opening
 * here unless the file is lost — then the reason can never be disclosed (nobody else can open it). Readers
 * (`audit report`, `audit serve`, evidence bundles) keep only lines whose text and salt open the commitment.
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { syncDir } from '../fs/durable.js'
import { checkReason, type ReasonDisclosure } from '../chain/reasons.js'
import { flytrapDir } from './project-dir.js'

export const REASONS_FILE = 'reasons.jsonl'

export interface ReasonLine extends ReasonDisclosure {
  v: 1
  chainId: number
  contract: string
  topic: string
  client: string
  /** allow, revoke, … : the command that sent it. */
  action: string
  /** Unix ms. */
  at: number
}

export function reasonsPath(dir = flytrapDir()): string {
  return join(dir, REASONS_FILE)
}

/** Appends one line durably (write + fsync, and the directory's fsync when the file is new). */
export async function appendReason(line: ReasonLine, dir = flytrapDir()): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = reasonsPath(dir)
  const fd = openSync(path, 'a+', 0o600)
  try {
    // A torn last line (a crash mid-append) must not swallow this one: start on a line of its own.
    const size = fstatSync(fd).size
    const last = Buffer.alloc(1)
    const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a
    writeSync(fd, (torn ? '\n' : '') + JSON.stringify(line) + '\n')
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  await syncDir(dir)
  return path
}

/** Every disclosure in the file that opens its commitment, by commitment (lines that do not check are skipped). */
export function readReasons(dir = flytrapDir()): Map<string, ReasonDisclosure> {
  let text: string
  try {
    text = readFileSync(reasonsPath(dir), 'utf8')
  } catch {
    return new Map()
  }
  return parseReasons(text)
}

/** The disclosures of a reasons.jsonl's text (any file in that format, e.g. `audit export --reasons`). */
export function parseReasons(text: string): Map<string, ReasonDisclosure> {
  const out = new Map<string, ReasonDisclosure>()
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue
    try {
      const l = JSON.parse(raw) as Partial<ReasonLine>
      if (typeof l.commitment !== 'string' || typeof l.salt !== 'string' || typeof l.text !== 'string') continue
      if (!checkReason(l.commitment, l.salt, l.text)) continue
      out.set(l.commitment.toLowerCase(), { commitment: l.commitment.toLowerCase(), salt: l.salt, text: l.text })
    } catch {
      // a torn last line (a crash while appending): its transaction was never sent
    }
  }
  return out
}
