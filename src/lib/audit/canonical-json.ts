/**
 * Canonical JSON, the byte string every FlyTrap hash covers (journal leaves, erasure records, member records,
 * reason commitments): keys sorted, no whitespace, undefined members left out. Pure: no Node API, so the
 * same code runs in a browser or any checker.
 */

/** JSON with sorted keys, no whitespace, undefined members left out: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number')
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`)
    }
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}
