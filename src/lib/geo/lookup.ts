/**
 * Country of an IP address from a MaxMind DB (.mmdb) file: by default the GeoLite2 country database bundled
 * with @ip-location-db/geolite2-country-mmdb (GeoLite2 by MaxMind, CC BY-SA 4.0); `proxy start --geoip-db`
 * names another (MaxMind GeoLite2-Country / GeoIP2-Country, or any mmdb whose records carry
 * `country.iso_code` or the ip-location-db `country_code`). Purely local: no network traffic.
 *
 * The country database is about 9 MB, read into one Buffer (no per-record objects; geoip-lite's city data
 * took ~150 MB). It is loaded lazily on the first lookup of a public address; the proxy calls preloadGeo() at
 * start so that cost is never paid on a packet path. Processes that serve no connections (a cluster primary,
 * other commands) never load it.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Reader, type Response } from 'maxmind'
import { usageError } from '../errors.js'
import { compileAddressList, normalizeIp } from '../net/ip.js'
import { isCountryCode } from '../parse/countries.js'

/** The bundled GeoLite2 country database. */
export const BUNDLED_GEOIP_DB = createRequire(import.meta.url).resolve('@ip-location-db/geolite2-country-mmdb/geolite2-country.mmdb')

/** The two record shapes: MaxMind's GeoIP2/GeoLite2 Country (and City), and ip-location-db's. */
interface CountryRecord {
  country?: { iso_code?: unknown }
  country_code?: unknown
}

let file = BUNDLED_GEOIP_DB
let reader: Reader<Response> | undefined

/** Public addresses any country database places (Google DNS, MaxMind's own test network, RIPE, IPv6). */
const PROBES = ['8.8.8.8', '81.2.69.142', '193.0.6.139', '2001:4860:4860::8888', '2a02:c7f::1']

function open(path: string): Reader<Response> {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw usageError(`--geoip-db ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'pass a MaxMind DB file, e.g. GeoLite2-Country.mmdb')
  }
  let r: Reader<Response>
  try {
    r = new Reader<Response>(bytes)
  } catch (err) {
    throw usageError(`--geoip-db ${path}: not a MaxMind DB file (${(err as Error).message})`, 'pass an .mmdb file (not the CSV or a .tar.gz), e.g. GeoLite2-Country.mmdb')
  }
  // A database without countries (ASN, ISP, ...) would make every country-limited topic refuse everyone.
  if (!PROBES.some((ip) => codeOf(safeGet(r, ip)) !== null)) {
    throw usageError(`--geoip-db ${path}: a ${r.metadata.databaseType} database with no country for ${PROBES.join(', ')}`, 'pass a country database: records with country.iso_code (MaxMind GeoLite2/GeoIP2 Country or City) or country_code (ip-location-db)')
  }
  return r
}

function safeGet(r: Reader<Response>, ip: string): CountryRecord | null {
  try {
    return r.get(ip) as CountryRecord | null
  } catch {
    return null // an IPv4-only database asked for IPv6
  }
}

function codeOf(rec: CountryRecord | null): string | null {
  const code = rec?.country?.iso_code ?? rec?.country_code
  return typeof code === 'string' && isCountryCode(code) ? code : null // a database's placeholder (EU, AP, XX) places no one
}

/**
 * Uses `path` for every later lookup, checked now (a usage error for a missing, unreadable or invalid file,
 * or one without countries). The check's copy is dropped: the database is loaded when it is needed.
 */
export function useGeoDb(path: string): void {
  open(path)
  if (path !== file) reader = undefined
  file = path
}

/** Loads the database now (idempotent). */
export function preloadGeo(): void {
  reader ??= open(file)
}

/** Whether the database is in memory. */
export function geoLoaded(): boolean {
  return reader !== undefined
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
  preloadGeo()
  return codeOf(safeGet(reader!, address))
}
