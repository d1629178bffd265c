/** Human output helpers for commands: tables, colour and spinners. Only commands use this folder. */
import chalk from 'chalk'
import Table from 'cli-table3'
import type { Ora } from 'ora'

export { chalk }

// eslint-disable-next-line no-control-regex -- ANSI colour codes are not printed width
const ANSI = /\u001b\[[0-9;]*m/g
const visible = (s: string) => s.replace(ANSI, '')
const cellWidth = (s: string) => Math.max(0, ...visible(s).split('\n').map((l) => [...l].length))

let wide = false
/** `--wide` (or FLYTRAP_WIDE=1 for every command): tables keep their natural width whatever the terminal. */
export function setWideTables(on: boolean): void {
  wide = on
}

/**
 * The width tables must fit: the terminal's on a TTY (process.stdout.columns), unless --wide. Output that is
 * not a terminal (a pipe, a file) is not fitted: full rows, as before, so nothing a script reads is wrapped.
 */
export function tableWidth(): number {
  if (wide || !process.stdout.isTTY || /^(1|true|yes)$/i.test(process.env.FLYTRAP_WIDE ?? '')) return Infinity
  const cols = process.stdout.columns
  return cols && cols > 0 ? cols : 80
}

/** A narrowed column keeps its longest word up to this (longer words wrap mid-word rather than widen it). */
const MAX_WORD = 24
const MIN_COL = 8

/**
 * Column widths (cli-table3's, padding included) that fit `width`: the widest columns are narrowed first, each
 * to no less than its longest word (times, addresses, hashes stay whole, up to MAX_WORD) and its cells wrap.
 * Null when the table fits as it is; 'stack' when even the narrowest columns do not fit (too many columns for
 * the terminal: the rows are then printed one field per line).
 */
export function fitColumns(head: string[], rows: string[][], width: number): number[] | null | 'stack' {
  const n = head.length
  const natural = head.map((h, i) => Math.max(cellWidth(h), ...rows.map((r) => cellWidth(r[i] ?? ''))) + 2)
  const borders = n + 1
  const widths = [...natural]
  const total = () => widths.reduce((a, w) => a + w, 0) + borders
  if (total() <= width) return null
  const longestWord = (i: number) => Math.max(MIN_COL - 2, ...[head[i] ?? '', ...rows.map((r) => r[i] ?? '')].flatMap((c) => visible(c).split(/\s+/)).map((w) => Math.min(MAX_WORD, [...w].length)))
  const floor = natural.map((w, i) => Math.min(w, longestWord(i) + 2))
  if (floor.reduce((a, w) => a + w, 0) + borders > width) return 'stack'
  while (total() > width) {
    let at = -1
    for (let i = 0; i < n; i++) if (widths[i]! > floor[i]! && (at < 0 || widths[i]! > widths[at]!)) at = i
    if (at < 0) break
    widths[at] = widths[at]! - 1
  }
  return widths
}

/** Words of `text` in lines of at most `width` characters; a longer word is cut across lines. */
export function wrapText(text: string, width: number): string[] {
  const out: string[] = []
  for (const para of text.split('\n')) {
    let line = ''
    for (let word of para.split(/\s+/).filter(Boolean)) {
      while ([...word].length > width) {
        if (line) out.push(line)
        line = ''
        out.push([...word].slice(0, width).join(''))
        word = [...word].slice(width).join('')
      }
      if (!word) continue
      if (line && [...line].length + 1 + [...word].length > width) {
        out.push(line)
        line = word
      } else line = line ? `${line} ${word}` : word
    }
    out.push(line)
  }
  return out
}

/** Rows one field per line ("name  value", values wrapped), a rule between rows: what a table becomes when too narrow. */
function stacked(head: string[], rows: string[][], width: number): string {
  const keyW = Math.max(...head.map((h) => [...h].length))
  const valueW = Math.max(10, width - keyW - 2)
  const blocks = rows.map((r, n) => {
    const lines = [chalk.dim(`── ${n + 1}/${rows.length} ${'─'.repeat(Math.max(0, Math.min(width, 80) - 6 - String(n + 1).length - String(rows.length).length))}`)]
    head.forEach((h, i) => {
      const v = r[i] ?? ''
      if (v === '') return
      wrapText(v, valueW).forEach((l, j) => lines.push(`${j === 0 ? chalk.bold(h.padEnd(keyW)) : ' '.repeat(keyW)}  ${l}`))
    })
    return lines.join('\n')
  })
  return blocks.join('\n')
}

/**
 * A table with a bold header, fitted to the terminal's width (see tableWidth): wide columns narrowed and their
 * cells wrapped; with more columns than the terminal can hold, one field per line per row.
 */
export function table(head: string[], rows: (string | number)[][], opts: { width?: number } = {}): string {
  const cells = rows.map((r) => r.map(String))
  const width = opts.width ?? tableWidth()
  const colWidths = fitColumns(head, cells, width)
  if (colWidths === 'stack') return stacked(head, cells, width)
  const t = new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [] }, ...(colWidths ? { colWidths, wordWrap: true, wrapOnWordBoundary: false } : {}) })
  t.push(...(colWidths ? cells.map((r) => r.map((c, i) => wrapText(c, colWidths[i]! - 2).join('\n'))) : cells))
  return t.toString()
}

/** Two-column key/value table for one record. */
export function record(rows: [string, string | number][]): string {
  const t = new Table({ style: { head: [], border: [] } })
  for (const [k, v] of rows) t.push({ [chalk.bold(k)]: String(v) })
  return t.toString()
}

/** A spinner on stderr while `work` runs; silent when stderr is not a TTY or output is JSON. */
export async function spin<T>(text: string, work: (s: Ora) => Promise<T>, opts: { enabled: boolean }): Promise<T> {
  const { default: ora } = await import('ora') // ~150 ms of start-up saved for commands that never wait
  if (!opts.enabled || !process.stderr.isTTY) return work(ora({ text, isSilent: true }))
  const s = ora({ text, stream: process.stderr })
  s.start()
  try {
    const result = await work(s)
    s.succeed()
    return result
  } catch (err) {
    s.fail()
    throw err
  }
}

/** One word for a POSIX shell: left bare when it is safe, else single-quoted (a ' becomes '\''). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}
