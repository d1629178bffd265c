/** Human output helpers for commands: tables, colour and spinners. Only commands use this folder. */
import chalk from 'chalk'
import Table from 'cli-table3'
import type { Ora } from 'ora'

export { chalk }

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head: head.map((h) => chalk.bold(h)), style: { head: [], border: [] } })
  t.push(...rows.map((r) => r.map(String)))
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
