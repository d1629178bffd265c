/**
 * The one parser of durations, dates and sizes (src/lib/parse/units.ts): table tests of what each accepts,
 * what it refuses (always a usage error naming the flag) and its boundaries — leap days, time zones,
 * compound durations, overflow. The commands that used their own parsers (topic add/fee --period,
 * device sign --expires, topic allow --until, audit report/verify --from/--to) all go through these.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MQTT_MAX_PACKET } from '../../../src/lib/proxy/cli-options.js'
import { parseDate, parseDateSec, parseDuration, parseDurationSec, parseSize } from '../../../src/lib/parse/units.js'
import { COUNTRY_CODES, isCountryCode } from '../../../src/lib/parse/countries.js'
import { encodeCountries } from '../../../src/lib/chain/codec.js'
import { ExitCode, FlytrapError } from '../../../src/lib/errors.js'

function usage(fn: () => unknown, message: RegExp): FlytrapError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof FlytrapError, `expected a FlytrapError, got ${String(caught)}`)
  assert.equal(caught.exit, ExitCode.usage, caught.message)
  assert.match(caught.message, message)
  return caught
}

const parseDurationMs = (v: string, flag: string, range: { min?: number; max?: number } = {}) => parseDuration(v, flag, { ...range, bare: 'ms' })

describe('parseSize', () => {
  const ok: Array<[string, number]> = [
    ['1048576', 1_048_576],
    ['1MB', 1_048_576],
    ['1mb', 1_048_576],
    ['1 MB', 1_048_576],
    ['1MiB', 1_048_576],
    ['1M', 1_048_576],
    ['512KB', 524_288],
    ['64k', 65_536],
    ['1.5MB', 1_572_864],
    ['100B', 100],
    ['256MB', 268_435_456],
  ]
  for (const [text, bytes] of ok) test(`${JSON.stringify(text)} → ${bytes}`, () => assert.equal(parseSize(text, '--max-packet-size'), bytes))

  const bad: Array<[string, RegExp]> = [
    ['', /is not a size/],
    ['MB', /is not a size/],
    ['1XB', /is not a size/],
    ['-1MB', /is not a size/],
    ['1e6', /is not a size/],
    ['1 M B', /is not a size/],
  ]
  for (const [text, message] of bad) test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseSize(text, '--max-packet-size'), message))

  test('range: minimum and the MQTT maximum', () => {
    usage(() => parseSize('10', '--max-packet-size', { min: 64, max: MQTT_MAX_PACKET }), /--max-packet-size 10 is below the minimum of 64 bytes/)
    usage(() => parseSize('1GB', '--max-packet-size', { min: 64, max: MQTT_MAX_PACKET }), /above the maximum/)
    assert.equal(parseSize(String(MQTT_MAX_PACKET), '--max-packet-size', { max: MQTT_MAX_PACKET }), MQTT_MAX_PACKET)
  })

  test('the error names the flag and suggests a spelling', () => {
    const err = usage(() => parseSize('lots', '--max-packet-size'), /^--max-packet-size "lots" is not a size$/)
    assert.match(err.suggestions.join(' '), /1MB/)
  })
})

describe('parseDuration with bare milliseconds (the proxy\'s timeouts)', () => {
  const ok: Array<[string, number]> = [
    ['1000', 1_000], // a bare number is milliseconds
    ['500ms', 500],
    ['10s', 10_000],
    ['10sec', 10_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['5min', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['2d', 172_800_000],
    ['1w', 604_800_000],
    [' 60S ', 60_000],
  ]
  for (const [text, ms] of ok) test(`${JSON.stringify(text)} → ${ms} ms`, () => assert.equal(parseDurationMs(text, '--ban-window'), ms))

  const bad = ['', 's', '10 seconds', '1.5.5s', '-5s', '5x', '5m garbage', 'soon']
  for (const text of bad) test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseDurationMs(text, '--ban-window'), /^--ban-window ".*" is not a duration$/))

  test('a bare number under the minimum hints at a missing unit', () => {
    const err = usage(() => parseDurationMs('60', '--ban-window', { min: 1_000 }), /60 milliseconds, below the minimum of 1s/)
    assert.match(err.suggestions.join(' '), /did you mean --ban-window 60s/)
  })

  test('range checks apply to spelled-out units too', () => {
    usage(() => parseDurationMs('10ms', '--poll-interval', { min: 50 }), /below the minimum of 50ms/)
    usage(() => parseDurationMs('2h', '--poll-interval', { max: 3_600_000 }), /above the maximum of 1h/)
  })
})

describe('parseDuration: one unit set, compound everywhere', () => {
  const ok: Array<[string, number]> = [
    ['30d', 30 * 86_400_000],
    ['1y', 365 * 86_400_000],
    ['1h30m', 5_400_000],
    ['2w3d', 17 * 86_400_000],
    ['1y2d', 367 * 86_400_000],
    ['90m', 5_400_000],
    ['0', 0],
    ['1.5h', 5_400_000],
  ]
  for (const [text, ms] of ok) test(`${JSON.stringify(text)} → ${ms} ms`, () => assert.equal(parseDuration(text, '--period'), ms))
  const bad: Array<[string, RegExp]> = [
    ['30', /has no unit/], // without a bare unit a number is ambiguous (seconds? days?)
    ['1h1h', /is not a duration/], // a repeated unit is a typo
    ['1mo', /is not a duration/], // no months: m is minutes
    ['h', /is not a duration/],
    ['1h 30m', /is not a duration/],
    ['+1d', /is not a duration/],
    ['99999999999999999999y', /too large/], // overflow is refused, not rounded
  ]
  for (const [text, re] of bad) test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseDuration(text, '--period'), re))

  test('seconds: whole seconds only, range in seconds', () => {
    assert.equal(parseDurationSec('1h30m', '--period'), 5400)
    assert.equal(parseDurationSec('0', '--period'), 0)
    usage(() => parseDurationSec('1500ms', '--period'), /not a whole number of seconds/)
    usage(() => parseDurationSec('200y', '--period', { max: 2 ** 32 - 1 }), /above the maximum/)
    assert.equal(parseDurationSec('136y', '--period', { max: 2 ** 32 - 1 }), 136 * 365 * 86_400)
  })
})

describe('parseDate: ISO dates round-trip checked', () => {
  const now = Date.UTC(2027, 0, 15, 12, 0, 0)
  const ok: Array<[string, number]> = [
    ['2027-01-31', Date.UTC(2027, 0, 31)],
    ['2028-02-29', Date.UTC(2028, 1, 29)], // a leap day
    ['2027-01-31T12:00Z', Date.UTC(2027, 0, 31, 12)],
    ['2027-01-31T12:00', Date.UTC(2027, 0, 31, 12)], // no zone: UTC, as the CLI prints
    ['2027-01-31T12:00:30.25Z', Date.UTC(2027, 0, 31, 12, 0, 30, 250)],
    ['2027-01-31T12:00+02:00', Date.UTC(2027, 0, 31, 10)],
    ['2027-01-31T12:00-0530', Date.UTC(2027, 0, 31, 17, 30)],
    ['2027-01-31T23:59:59Z', Date.UTC(2027, 0, 31, 23, 59, 59)],
    ['1800000000', 1_800_000_000_000],
    ['now', now],
  ]
  for (const [text, ms] of ok) test(`${JSON.stringify(text)} → ${new Date(ms).toISOString()}`, () => assert.equal(parseDate(text, '--expires', { now }), ms))

  const bad: Array<[string, RegExp]> = [
    ['2027-02-30', /not a valid date/], // Date.UTC would say 2 March
    ['2027-02-29', /not a valid date/], // not a leap year
    ['2027-13-01', /not a valid date/],
    ['2027-00-10', /not a valid date/],
    ['2027-04-31', /not a valid date/],
    ['2027-01-31T24:00Z', /not a valid date/],
    ['2027-01-31T12:60Z', /not a valid date/],
    ['2027-01-31T12:00:60Z', /not a valid date/],
    ['2027-01-31T12:00+15:00', /not a time zone offset/],
    ['1969-12-31', /not a valid date/],
    ['31/01/2027', /not a date/],
    ['2027-1-31', /not a date/],
    ['tomorrow', /not a date/],
    ['', /not a date/],
  ]
  for (const [text, re] of bad) test(`${JSON.stringify(text)} is refused`, () => void usage(() => parseDate(text, '--expires', { now }), re))

  test('a duration counts from now in the direction the flag means', () => {
    assert.equal(parseDate('1h30m', '--expires', { now, relative: 'future' }), now + 5_400_000)
    assert.equal(parseDate('7d', '--from', { now, relative: 'past' }), now - 7 * 86_400_000)
    usage(() => parseDate('7d', '--at', { now }), /is a duration, not a date/)
    usage(() => parseDate('99999999999y', '--expires', { now, relative: 'future' }), /too (far|large)/)
  })

  test('a bare date as an end bound means the end of that day; a time does not move', () => {
    assert.equal(parseDate('2027-01-31', '--to', { end: true }), Date.UTC(2027, 1, 1))
    assert.equal(parseDate('2027-01-31T10:00Z', '--to', { end: true }), Date.UTC(2027, 0, 31, 10))
  })

  test('seconds', () => assert.equal(parseDateSec('30d', '--expires', { now: 1_800_000_000, relative: 'future' }), 1_800_000_000 + 30 * 86_400))
})

describe('sizes: binary units and whole bytes', () => {
  test('KiB / KB / K agree; fractions must come to whole bytes', () => {
    assert.equal(parseSize('1KiB', '--x'), 1024)
    assert.equal(parseSize('1KB', '--x'), 1024)
    assert.equal(parseSize('2GiB', '--x'), 2 * 1024 ** 3)
    usage(() => parseSize('1.1B', '--x'), /not a whole number of bytes/)
    usage(() => parseSize('99999999999GB', '--x'), /too large/)
  })
})

describe('ISO 3166-1 alpha-2', () => {
  test('the 249 assigned codes and Kosovo, nothing reserved', () => {
    assert.equal(COUNTRY_CODES.size, 250)
    for (const code of ['GB', 'DE', 'US', 'JP', 'SS', 'CW', 'AX', 'XK']) assert.ok(isCountryCode(code), code)
    for (const code of ['XX', 'ZZ', 'UK', 'EU', 'AA', 'QZ', 'gb', 'G']) assert.ok(!isCountryCode(code), code)
  })
  test('--country XX and UK are refused before anything is sent; lower case is normalised', () => {
    usage(() => encodeCountries(['XX']), /XX is not an assigned ISO 3166-1 alpha-2/)
    const err = usage(() => encodeCountries(['UK']), /UK is not an assigned/)
    assert.match(err.suggestions.join(' '), /GB/)
    assert.ok(encodeCountries(['gb', 'de']))
  })
})
