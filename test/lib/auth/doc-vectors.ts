/**
 * Reads the test vectors out of docs/protocol.md, so the document cannot drift from the code: each vector is a
 * fenced code block directly preceded by `<!-- vector: NAME -->`.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DOC = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url))

export function docVectors(): Map<string, string> {
  const text = readFileSync(DOC, 'utf8')
  const out = new Map<string, string>()
  const re = /<!-- vector: ([a-z0-9-]+) -->\n```[a-z]*\n([\s\S]*?)\n```/g
  for (const m of text.matchAll(re)) {
    const [, name, body] = m
    if (out.has(name as string)) throw new Error(`vector ${name} appears twice in docs/protocol.md`)
    out.set(name as string, body as string)
  }
  const markers = text.match(/<!-- vector: /g)?.length ?? 0
  if (markers !== out.size) throw new Error(`docs/protocol.md has ${markers} vector markers but ${out.size} parse`)
  return out
}

/** `key: value` lines → record. */
export function keyValues(block: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of block.split('\n')) {
    const i = line.indexOf(': ')
    if (i < 0) throw new Error(`not a "key: value" line: ${line}`)
    out[line.slice(0, i)] = line.slice(i + 2)
  }
  return out
}
