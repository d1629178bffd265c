/**
 * The one parser for durations, dates and sizes: every command flag and the proxy's options go through it,
 * so `1h30m`, `2027-02-30` or `1.5MiB` mean the same thing (or are refused the same way) everywhere.
 *
 * Durations: one or more `<number><unit>` parts, `1h30m`, `1.5s`, `2w3d`. Units: ms, s, m (minutes), h, d,
 *   w (7 d), y (365 d; no calendar years, no months: "m" is minutes); `sec` and `min` are aliases. A bare number takes the flag's
 *   `bare` unit (milliseconds for the proxy's timeouts, refused elsewhere).
 * Dates: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `±HH:MM` (a time
 *   without a zone is read as UTC: the CLI prints every time in UTC), unix seconds (9–11 digits), `now`,
 *   or a duration (from now: into the future for expiries, into the past for report ages). Every field
 *   is round-trip checked: 2027-02-30, 24:00 or +15:00 are refused, never rolled over.
 * Sizes: bytes, or KB/KiB/K, MB/MiB/M, GB/GiB/G, all binary (1 KB = 1024 bytes) as MQTT brokers count them.
 */
import { usageError } from '../errors.js'

export interface Range { min?: number; max?: number }

const DURATION_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 365 * 86_400_000 }
const PART = /(\d+(?:\.\d+)?)(ms|sec|min|s|m|h|d|w|y)/y
const ALIAS: Record<string, string> = { sec: 's', min: 'm' }

/** Milliseconds of a duration text, or undefined when it is not one (no range check, no bare numbers). */
export function durationMs(value: string): number | undefined {
  const text = value.trim().toLowerCase()
  if (text === '') return undefined
  PART.lastIndex = 0
  let ms = 0
  const seen = new Set<string>()
  while (PART.lastIndex < text.length) {
    const m = PART.exec(text)
    if (!m) return undefined
    const unit = ALIAS[m[2]!] ?? m[2]!
    if (seen.has(unit)) return undefined // "1h1h" is a typo, not 2 h
    seen.add(unit)
    ms += Number(m[1]) * DURATION_MS[unit]!
  }
  return Math.round(ms)
}

const DURATION_HINT = '500ms, 10s, 5m, 1h30m, 2d, 1w or 1y (m is minutes; y is 365 days)'

/** A duration in milliseconds. `bare` says what unit a bare number has; without it a bare number (other than 0) is refused. */
export function parseDuration(value: string, flag: string, opts: Range & { bare?: 'ms' | 's' } = {}): number {
  const text = value.trim()
  let ms: number | undefined
  if (/^\d+$/.test(text)) {
    if (opts.bare === undefined && Number(text) !== 0) throw usageError(`${flag} "${value}" has no unit`, `e.g. ${flag} ${text}s or ${text}d (${DURATION_HINT})`)
    ms = Number(text) * (opts.bare === 's' ? 1000 : 1)
    if (opts.bare === 'ms' && opts.min !== undefined && ms < opts.min && ms > 0) {
      throw usageError(`${flag} ${value} is ${value} milliseconds, below the minimum of ${formatDuration(opts.min)}`, `a bare number is milliseconds: did you mean ${flag} ${value}s?`)
    }
  } else {
    ms = durationMs(text)
    if (ms === undefined) throw usageError(`${flag} "${value}" is not a duration`, `e.g. ${flag} ${DURATION_HINT}`)
  }
  checkRange(ms, flag, value, opts, formatDuration)
  return ms
}

/** A duration in whole seconds (the contract's periods, credential lifetimes). */
export function parseDurationSec(value: string, flag: string, opts: Range = {}): number {
  const ms = parseDuration(value, flag, { min: opts.min === undefined ? undefined : opts.min * 1000, max: opts.max === undefined ? undefined : opts.max * 1000 })
  if (ms % 1000 !== 0) throw usageError(`${flag} "${value}" is not a whole number of seconds`)
  return ms / 1000
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i
const DATE_HINT = 'use an ISO date or time (2027-01-31, 2027-01-31T12:00Z, 2027-01-31T12:00+02:00), unix seconds, "now" or a duration like 30d'

/**
 * A point in time in milliseconds. `relative` says which way a duration counts from now (`future` for
 * expiries, `past` for report ages); `end` makes a bare date mean the end of that day (exclusive bounds).
 */
export function parseDate(value: string, flag: string, opts: { relative?: 'future' | 'past'; end?: boolean; now?: number } = {}): number {
  const text = value.trim()
  const now = opts.now ?? Date.now()
  if (text.toLowerCase() === 'now') return now
  const rel = durationMs(text)
  if (rel !== undefined) {
    if (opts.relative === undefined) throw usageError(`${flag} "${value}" is a duration, not a date`, DATE_HINT)
    return checkedTime(opts.relative === 'future' ? now + rel : now - rel, flag, value)
  }
  if (/^\d{9,11}$/.test(text)) return Number(text) * 1000
  const m = DATE_RE.exec(text)
  if (!m) throw usageError(`${flag} "${value}" is not a date`, DATE_HINT)
  const [y, mo, d, h = '0', mi = '0', s = '0', frac = '0', zone] = m.slice(1) as string[]
  const f = { y: Number(y), mo: Number(mo), d: Number(d), h: Number(h), mi: Number(mi), s: Number(s), ms: Number(frac.padEnd(3, '0')) }
  const t = Date.UTC(f.y, f.mo - 1, f.d, f.h, f.mi, f.s, f.ms)
  const back = new Date(t)
  // Date.UTC rolls 30 February into 2 March and 24:00 into the next day: compare every field on the way back.
  if (f.y < 1970 || back.getUTCFullYear() !== f.y || back.getUTCMonth() !== f.mo - 1 || back.getUTCDate() !== f.d ||
      back.getUTCHours() !== f.h || back.getUTCMinutes() !== f.mi || back.getUTCSeconds() !== f.s) {
    throw usageError(`${flag} "${value}" is not a valid date (no such day or time)`, DATE_HINT)
  }
  let offset = 0
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!
    const zh = Number(z[2]), zm = Number(z[3])
    if (zh > 14 || zm > 59 || (zh === 14 && zm > 0)) throw usageError(`${flag} "${value}": ${zone} is not a time zone offset`, 'offsets run from -12:00 to +14:00')
    offset = (z[1] === '-' ? -1 : 1) * (zh * 60 + zm) * 60_000
  }
  const dateOnly = m[4] === undefined
  return t - offset + (dateOnly && opts.end ? 86_400_000 : 0)
}

/** A point in time in unix seconds (credential and grant expiries). */
export function parseDateSec(value: string, flag: string, opts: { relative?: 'future' | 'past'; now?: number } = {}): number {
  return Math.floor(parseDate(value, flag, { ...opts, now: opts.now === undefined ? undefined : opts.now * 1000 }) / 1000)
}

function checkedTime(ms: number, flag: string, value: string): number {
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > 8.64e15) throw usageError(`${flag} "${value}" is too far away`)
  return ms
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }

/** Bytes from "1048576", "512KB", "1MB", "1.5MiB", "64k" (binary units: 1 KB = 1024 bytes). */
export function parseSize(value: string, flag: string, range: Range = {}): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim())
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw usageError(`${flag} "${value}" is not a size`, `e.g. ${flag} 1MB, 256KiB or 65536 (bytes; 1 KB = 1024 bytes)`)
  const bytes = Number(m[1]) * unit
  if (!Number.isInteger(bytes)) throw usageError(`${flag} "${value}" is not a whole number of bytes`)
  checkRange(bytes, flag, value, range, formatBytes)
  return bytes
}

export function checkRange(n: number, flag: string, value: string, range: Range, fmt: (n: number) => string): void {
  if (!Number.isSafeInteger(n)) throw usageError(`${flag} "${value}" is too large`)
  if (range.min !== undefined && n < range.min) throw usageError(`${flag} ${value} is below the minimum of ${fmt(range.min)}`)
  if (range.max !== undefined && n > range.max) throw usageError(`${flag} ${value} is above the maximum of ${fmt(range.max)}`)
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} bytes`
}

/** The largest exact unit: 86400000 → "1d", 5400000 → "90m". */
export function formatDuration(n: number): string {
  for (const u of ['y', 'w', 'd', 'h', 'm', 's'] as const) {
    const size = DURATION_MS[u]!
    if (n >= size && n % size === 0) return `${n / size}${u}`
  }
  return `${n}ms`
}
