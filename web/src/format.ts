import { h, s, type Child } from './dom.js'

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

/** Every time on every page in UTC, with its zone, as the chain's detail text has it (2027-01-31 12:00:05 UTC). */
export function utc(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}\u00a0UTC`
}

export function time(t: string | number | null | undefined): Child {
  const d = toDate(t)
  if (!d) return '—'
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, utc(d))
}

/** The block explorer the server links to (GET /api/status `explorer`), set once at start-up. */
let explorer: string | null = null
export function setExplorer(url: string | null | undefined): void {
  explorer = url ?? null
}

/** Two overlapping sheets, drawn (no icon font: every system shows it). */
function copyIcon(): SVGElement {
  return s('svg', { viewBox: '0 0 16 16', 'aria-hidden': 'true', fill: 'none', stroke: 'currentColor', 'stroke-width': '1.5' }, s('rect', { x: 5.5, y: 5.5, width: 8, height: 8, rx: 1.5 }), s('path', { d: 'M10.5 3.5v-1a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h1' }))
}

/** A copy-to-clipboard button for a full value (the cell shows it shortened). */
export function copyButton(value: string, what = 'value'): HTMLElement {
  const btn = h('button', { type: 'button', class: 'copy', title: `Copy the full ${what}`, 'aria-label': `Copy ${what} ${value}`, 'data-copy': value }, copyIcon())
  btn.addEventListener('click', (ev) => {
    ev.preventDefault()
    const done = () => {
      btn.replaceChildren('✓')
      setTimeout(() => btn.replaceChildren(copyIcon()), 1200)
    }
    void navigator.clipboard?.writeText(value).then(done, () => undefined)
  })
  return btn
}

/** A shortened hex value with its full value in the title and a copy button; linked when href is given. */
export function truncated(value: string, what: string, href?: string | null, label?: string): HTMLElement {
  const text = short(value)
  const inner = href ? h('a', { href, class: 'mono', title: value, 'aria-label': label ?? `${what} ${value}` }, text) : h('span', { class: 'mono', title: value }, text)
  return h('span', { class: 'trunc' }, inner, copyButton(value, what))
}

/** A transaction hash: linked to the explorer when one is configured, always copyable. */
export function txLink(x: string | null | undefined): Child {
  if (!x) return '—'
  return truncated(x, 'transaction hash', explorer ? `${explorer}/tx/${x}` : null)
}

/** A block number: linked to the explorer when one is configured. */
export function blockLink(n: number | null | undefined): Child {
  if (n === null || n === undefined) return '—'
  return explorer ? h('a', { href: `${explorer}/block/${n}`, class: 'mono' }, String(n)) : h('span', { class: 'mono' }, String(n))
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
  return truncated(a, 'address', `#/client/${a}`, `client ${a}`)
}

export function hash(x: string | null | undefined, what = 'hash'): Child {
  if (!x) return '—'
  if (!/^0x[0-9a-fA-F]{16,}$/.test(x)) return h('span', { class: 'mono' }, x)
  return truncated(x, what)
}

/** The proxy's decision codes (policy/types.ts DecisionReason, auth/result.ts outcomes) and the chain's, in words. */
const REASONS: Record<string, string> = {
  'no-grant': 'no grant',
  expired: 'expired (credential or grant)',
  country: 'country not allowed',
  unregistered: 'unregistered topic',
  'not-synced': 'policy not synced',
  invalid: 'invalid topic',
  missing: 'no credential',
  malformed: 'malformed credential',
  'bad-signature': 'bad signature',
  signature: 'bad signature',
  'too-long': 'credential lifetime too long',
  'wrong-deployment': 'credential for another deployment',
  'wrong-client-id': 'wrong client id',
  banned: 'banned',
  connect: 'connection refused',
  topic: 'topic access refused',
}
export function reasonLabel(code: string): string {
  return REASONS[code] ?? code.replace(/-/g, ' ')
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
