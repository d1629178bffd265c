/** Parsing the services a user names for the bench (`--broker mqtt://…`, `--proxy mqtts://…`). */
import { readFileSync } from 'node:fs'
import { usageError } from '../errors.js'
import type { Target } from './raw-client.js'

export function parseTarget(url: string, flag: string, ca?: string): Target {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw usageError(`${flag} "${url}" is not a URL`, 'e.g. mqtt://127.0.0.1:1883 or mqtts://broker.example:8883')
  }
  const secure = u.protocol === 'mqtts:' || u.protocol === 'ssl:'
  if (!secure && u.protocol !== 'mqtt:' && u.protocol !== 'tcp:') throw usageError(`${flag} must be an mqtt:// or mqtts:// URL`)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const port = Number(u.port || (secure ? 8883 : 1883))
  return secure ? { host, port, tls: { ca: ca ? readFileSync(ca) : undefined, servername: host } } : { host, port }
}

/** "10,100,1000" → [10, 100, 1000]. */
export function parseLevels(text: string): number[] {
  const levels = text.split(',').map((s) => Number(s.trim()))
  if (levels.length === 0 || levels.some((n) => !Number.isInteger(n) || n < 1 || n > 1_000_000)) {
    throw usageError(`--clients "${text}" is not a list of client counts`, 'e.g. --clients 10,100,1000,10000')
  }
  return levels
}
