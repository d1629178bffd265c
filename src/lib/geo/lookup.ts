/**
 * Country of an IP address from the GeoLite2-derived database bundled with geoip-lite. Purely local: no
 * network traffic.
 *
 * geoip-lite reads its whole database into memory when it is first required (about 150 MB, a few hundred
 * ms, synchronously), so it is loaded lazily on the first lookup; the proxy calls preloadGeo() at start so
 * that cost is never paid on a packet path.
 */
import { createRequire } from 'node:module'
import { compileAddressList, normalizeIp } from '../net/ip.js'

type GeoIp = typeof import('geoip-lite')

let geo: GeoIp | undefined

function load(): GeoIp {
  // createRequire keeps the load synchronous and deferred (a static import would load it with this module).
  geo ??= createRequire(import.meta.url)('geoip-lite') as GeoIp
  return geo
}

/** Loads the database now (idempotent). */
export function preloadGeo(): void {
  load()
}

/** Whether the database is in memory. */
export function geoLoaded(): boolean {
  return geo !== undefined
}

/** Addresses that have no country: loopback, private, link-local, CGNAT, documentation, multicast, reserved. */
const NOT_PUBLIC = compileAddressList([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/3', // multicast and reserved, up to 255.255.255.255
  '::/127', // unspecified and loopback
  '::/96', // IPv4-compatible (deprecated)
  '64:ff9b:1::/48',
  '100::/64',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
])

/**
 * ISO 3166-1 alpha-2 country code (upper case), or null for addresses that are not public, are not IP
 * addresses, or that the database does not place in a country. IPv4-mapped IPv6 is looked up as IPv4.
 */
export function countryOf(ip: string): string | null {
  const address = normalizeIp(ip)
  if (!address || NOT_PUBLIC.matches(address)) return null
  const country = load().lookup(address)?.country
  return country && /^[A-Z]{2}$/.test(country) ? country : null
}
