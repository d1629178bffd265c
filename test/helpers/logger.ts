/** A Logger that keeps every line it is given, for tests that assert what was logged. */
import type { Logger } from '../../src/lib/log.js'

export interface LoggedLine {
  level: string
  msg: string
  fields?: Record<string, unknown>
}

export function recordingLogger(): Logger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = []
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), enabled: () => true }
}
