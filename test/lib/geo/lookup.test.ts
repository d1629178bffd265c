import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { countryOf, geoLoaded, preloadGeo } from '../../../src/lib/geo/lookup.js'

// Every value below was read from the bundled GeoLite2 country mmdb (@ip-location-db/geolite2-country-mmdb 2.3.2026061719;
// geoip-lite 1.4.10 gave the same answers), no network.
describe('countryOf', () => {
  test('non-public addresses answer null without loading the database', () => {
    for (const ip of [
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '::ffff:192.168.1.1',
      '127.0.0.1',
      '::1',
      '100.64.0.1',
      '169.254.1.1',
      '203.0.113.5',
      '224.0.0.1',
      '255.255.255.255',
      'fd00::1',
      'fe80::1%eth0',
      '2001:db8::1',
      'ff02::1',
      '::',
      'not-an-ip',
      '',
    ]) {
      assert.equal(countryOf(ip), null, ip)
    }
    assert.equal(geoLoaded(), false, 'lazy: nothing loaded yet')
  })

  test('preloadGeo loads the database once', () => {
    preloadGeo()
    assert.equal(geoLoaded(), true)
    preloadGeo()
  })

  const known: [string, string][] = [
    ['8.8.8.8', 'US'],
    ['81.2.69.142', 'GB'],
    ['193.0.6.139', 'NL'],
    ['2001:4860:4860::8888', 'US'],
    ['2001:67c:2e8:22::c100:68b', 'NL'],
  ]
  for (const [ip, country] of known) test(`${ip} -> ${country}`, () => assert.equal(countryOf(ip), country))

  test('IPv4-mapped IPv6 is looked up as IPv4, in any spelling', () => {
    assert.equal(countryOf('::ffff:81.2.69.142'), 'GB')
    assert.equal(countryOf('::FFFF:5102:458e'), 'GB')
    assert.equal(countryOf('0:0:0:0:0:ffff:808:808'), 'US')
  })

  test('IPv6 spellings of one address agree', () => {
    assert.equal(countryOf('2001:4860:4860:0:0:0:0:8888'), 'US')
    assert.equal(countryOf('2001:4860:4860:0000:0000:0000:0000:8888'), 'US')
  })

  test('a public address the database has no country for is null, not ""', () => {
    // 1.1.1.1 is in the database with an empty country.
    assert.equal(countryOf('1.1.1.1'), null)
  })
})
