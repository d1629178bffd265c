import { h, type Child } from './dom.js'

/** Contract sentinel for "until revoked": 2^40 - 1 seconds. */
const FOREVER = 2 ** 40 - 1

/** A time from the API: ISO string, unix seconds or milliseconds. */
export function toDate(t: string | number | null | undefined): Date | null {
  if (t === null || t === undefined || t === '') return null
  if (typeof t === 'number' || /^\d+$/.test(t)) {
    const n = Number(t)
    return new Date(n < 1e12 ? n * 1000 : n)
  }
  const d = new Date(t)
  return Number.isNaN(d.getTime()) ? null : d
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

export function time(t: string | number | null | undefined): Child {
  const d = toDate(t)
  if (!d) return '—'
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, dtf.format(d))
}

/**
 * A right's expiry: null = no right, "never" (or the contract's 2^40-1 sentinel, or 0) = until revoked, else a
 * time. `valid` is whether the server says the right holds now.
 */
export function expiry(e: string | number | null | undefined, valid = true): Child {
  if (e === null || e === undefined || e === '') return h('span', { class: 'muted' }, 'no')
  if (e === 0 || e === '0' || (typeof e === 'string' && /^(never|forever|until revoked)$/i.test(e))) return valid ? 'until revoked' : h('span', { class: 'muted' }, 'no')
  const n = typeof e === 'number' ? e : /^\d+$/.test(e) ? Number(e) : NaN
  if (n >= FOREVER) return 'until revoked'
  const d = toDate(e)
  if (!d) return String(e)
  const expired = !valid || d.getTime() <= Date.now()
  return h('span', { class: expired ? 'expired' : undefined }, expired ? 'expired ' : 'until ', time(e))
}

export function short(hex: string | null | undefined): string {
  if (!hex) return ''
  return /^0x[0-9a-fA-F]{16,}$/.test(hex) ? `${hex.slice(0, 6)}…${hex.slice(-4)}` : hex
}

export const isAddress = (a: unknown): a is string => typeof a === 'string' && /^0x[0-9a-fA-F]{40}$/.test(a)

/** An address, linked to its client page; the full value in the title and for screen readers. */
export function addr(a: string | null | undefined): Child {
  if (!a) return '—'
  if (!isAddress(a)) return h('span', { class: 'mono' }, a)
  return h('a', { href: `#/client/${a}`, class: 'mono', title: a, 'aria-label': `client ${a}` }, short(a))
}

export function hash(x: string | null | undefined): Child {
  if (!x) return '—'
  return h('span', { class: 'mono', title: x }, short(x))
}

export function topicLink(name: string | null | undefined): Child {
  if (!name) return '—'
  return h('a', { href: `#/topic/${encodeURIComponent(name)}` }, name)
}

export function yesNo(b: unknown): string {
  return b ? 'yes' : 'no'
}

export function duration(seconds: number | null | undefined): string {
  if (!seconds) return '—'
  const units: [number, string][] = [
    [86400 * 365, 'year'],
    [86400 * 30, 'month'],
    [86400 * 7, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ]
  for (const [n, u] of units) if (seconds % n === 0 || n === 1) return `${seconds / n} ${u}${seconds / n === 1 ? '' : 's'}`
  return `${seconds} s`
}

export function eth(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '' || Number(v) === 0) return 'free'
  return `${v} ETH`
}
