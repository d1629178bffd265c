/**
 * chain/events.ts, the one description of the contract's events: every event kind decoded from the real logs
 * of a real anvil deployment (names, typed arguments, chain position; another contract's logs dropped), the
 * ban-subject codec (round trips, the IP hash against node:crypto, malformed subjects refused), and the
 * one-line text of each kind.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { parseEther, type Log } from 'ethers'
import { deployFlyTrap, getLogsChunked, FlyTrapClient } from '../../../src/lib/chain/client.js'
import { encodeCountries, FOREVER, topicId } from '../../../src/lib/chain/codec.js'
import {
  bannedAddress,
  banSubjectForAddress,
  decodeBanSubject,
  decodeLog,
  decodeLogs,
  encodeBanSubject,
  EVENT_TYPES,
  eventText,
  ipBanSubject,
  isoFromMs,
  isoSeconds,
  REPORTER_ONLY,
  type ChainEvent,
  type EventArgs,
  type EventName,
} from '../../../src/lib/chain/events.js'
import { ReporterHistory } from '../../../src/lib/chain/reporters.js'
import { expiryIso } from '../../../src/lib/web/views.js'
import { subjectForAddress, subjectForIp } from '../../../src/lib/proxy/bans.js'
import { chainFixture, type ChainFixture } from '../../helpers/chain.js'

const A = 'ev/a'
const B = 'ev/b'
const F = 1_800_000_000 // report periods (unix seconds)
const UNTIL = 1_900_000_000
const ROOT = `0x${'11'.repeat(32)}`
const INDEX = `0x${'22'.repeat(32)}`
const CHAIN = `0x${'33'.repeat(32)}`
const MEMBERS = `0x${'44'.repeat(32)}`
const IP_HASH = ipBanSubject('203.0.113.9', 'subject key')

let fx: ChainFixture
let events: ChainEvent[]
let logs: Log[]
let ADMIN: string, REPORTER: string, ALICE: string, BOB: string, CAROL: string, DAVE: string, NEXT_ADMIN: string, TEMP: string
/** The one decoded event of each kind. */
const byName = new Map<EventName, ChainEvent>()

before(async () => {
  fx = await chainFixture({ publicSensitiveLists: true })
  const addr = (i: number) => fx.wallet(i).address
  ;[ADMIN, REPORTER, ALICE, BOB, CAROL, DAVE, NEXT_ADMIN, TEMP] = [0, 1, 2, 3, 4, 5, 6, 7].map(addr) as [string, string, string, string, string, string, string, string]
  const admin = fx.as(0)
  const reporter = fx.as(1)
  const alice = fx.as(2)
  const bob = fx.as(3)

  await admin.addReporter(REPORTER, 'the proxy')
  await admin.addReporter(TEMP, 'temporary')
  await admin.removeReporter(TEMP, 'not needed')
  await alice.addTopic({ name: A, pubFee: parseEther('0.001'), subFee: parseEther('0.002'), sensitive: true, open: true, period: 0, countries: encodeCountries(['GB', 'DE']), reason: 'plant data' })
  await bob.join(A, 2, 1, parseEther('0.002'))
  await alice.allow(A, CAROL, 1, UNTIL, 'maintenance')
  await alice.revoke(A, CAROL, 1, 'done')
  await alice.setFees(A, parseEther('0.003'), parseEther('0.004'), 3600, 'new prices')
  await alice.setCountries(A, encodeCountries(['FR']), 'moved')
  await alice.setFlags(A, { sensitive: true, open: false }, 'closed')
  await alice.addTopic({ name: B, pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'second' })
  await alice.transferTopic(B, BOB, 'handover')
  await bob.removeTopic(B, 'gone')
  await alice.withdraw(DAVE)
  await admin.setRegistrationFee(parseEther('0.01'))
  await admin.transferAdmin(NEXT_ADMIN)
  await fx.as(6).acceptAdmin()
  await reporter.recordBans([subjectForAddress(CAROL), IP_HASH], [UNTIL, UNTIL], 'threshold')
  await reporter.recordDenied(F, F + 600, [topicId(A), topicId('$connect')], [3, 4])
  await reporter.recordSensitive(topicId(A), F, F + 600, { publishers: 1, published: 5, receivers: 2, received: 9, membersRoot: MEMBERS })
  await reporter.recordSensitiveClear(topicId(A), F + 600, F + 1200, [ALICE], [2], [BOB, CAROL], [3, 4])
  await reporter.anchor({ fromTime: F, toTime: F + 600, firstSeq: 1, count: 3, root: ROOT, index: INDEX, prevChain: `0x${'00'.repeat(32)}`, chain: CHAIN })

  logs = await getLogsChunked(fx.provider, { address: fx.address, topics: [] }, fx.deployBlock)
  events = decodeLogs(fx.address, logs)
  // The first of each kind, but the last ban (the IP one) and the last admin change (not the deployment's own).
  for (const e of events) if (!byName.has(e.name) || e.name === 'Banned' || e.name === 'AdminChanged') byName.set(e.name, e)
})

after(async () => {
  await fx?.close()
})

const one = <N extends EventName>(name: N) => byName.get(name) as Extract<ChainEvent, { name: N }>

describe('decoding real logs', () => {
  test('every event kind of the ABI is decoded, in chain order, with its position', () => {
    assert.deepEqual([...new Set(events.map((e) => e.name))].sort(), [...EVENT_TYPES].sort())
    const abiEvents: string[] = []
    fx.as(0).contract.interface.forEachEvent((f) => abiEvents.push(f.name))
    assert.deepEqual([...EVENT_TYPES].sort(), abiEvents.sort(), 'EVENT_TYPES is the ABI’s list')
    assert.equal(events.length, logs.length, 'every log of the contract decodes')
    for (let i = 1; i < events.length; i++) {
      const [p, c] = [events[i - 1]!, events[i]!]
      assert.ok(p.block < c.block || (p.block === c.block && p.logIndex < c.logIndex), 'chain order')
    }
    for (const [e, l] of events.map((e) => [e, logs.find((l) => l.transactionHash === e.tx && l.index === e.logIndex)] as const)) {
      assert.ok(l, `${e.name}: its log`)
      assert.equal(e.block, l.blockNumber)
    }
  })

  const expected: { [N in EventName]: () => EventArgs[N] } = {
    TopicAdded: () => ({ topic: topicId(A), owner: ALICE, name: A, pubFee: parseEther('0.001'), subFee: parseEther('0.002'), flags: 3, period: 0, countries: encodeCountries(['DE', 'GB']), reason: 'plant data' }),
    TopicFeesChanged: () => ({ topic: topicId(A), actor: ALICE, pubFee: parseEther('0.003'), subFee: parseEther('0.004'), period: 3600, reason: 'new prices' }),
    TopicCountriesChanged: () => ({ topic: topicId(A), actor: ALICE, countries: encodeCountries(['FR']), reason: 'moved' }),
    TopicFlagsChanged: () => ({ topic: topicId(A), actor: ALICE, flags: 1, reason: 'closed' }),
    TopicTransferred: () => ({ topic: topicId(B), from: ALICE, to: BOB, reason: 'handover' }),
    TopicRemoved: () => ({ topic: topicId(B), actor: BOB, reason: 'gone' }),
    Granted: () => ({ topic: topicId(A), client: CAROL, roles: 1, expiresAt: BigInt(UNTIL), reason: 'maintenance' }),
    Revoked: () => ({ topic: topicId(A), client: CAROL, roles: 1, reason: 'done' }),
    Joined: () => ({ topic: topicId(A), client: BOB, roles: 2, paid: parseEther('0.002'), pubExpiresAt: 0n, subExpiresAt: FOREVER }),
    Withdrawn: () => ({ owner: ALICE, to: DAVE, amount: parseEther('0.002') }),
    AdminTransferStarted: () => ({ admin: ADMIN, pendingAdmin: NEXT_ADMIN }),
    AdminChanged: () => ({ previousAdmin: ADMIN, newAdmin: NEXT_ADMIN }),
    RegistrationFeeChanged: () => ({ actor: ADMIN, fee: parseEther('0.01') }),
    ReporterAdded: () => ({ reporter: REPORTER, actor: ADMIN, reason: 'the proxy' }),
    ReporterRemoved: () => ({ reporter: TEMP, actor: ADMIN, reason: 'not needed' }),
    Banned: () => ({ subject: IP_HASH, reporter: REPORTER, until: BigInt(UNTIL), reason: 'threshold' }),
    DeniedSummary: () => ({ reporter: REPORTER, fromTime: F, toTime: F + 600, topics: [topicId(A), topicId('$connect')], counts: [3, 4] }),
    SensitiveReport: () => ({ topic: topicId(A), reporter: REPORTER, fromTime: F, toTime: F + 600, publishers: 1, published: 5, receivers: 2, received: 9, membersRoot: MEMBERS }),
    SensitiveReportClear: () => ({ topic: topicId(A), reporter: REPORTER, fromTime: F + 600, toTime: F + 1200, publishers: [ALICE], published: [2], receivers: [BOB, CAROL], received: [3, 4] }),
    Anchored: () => ({ reporter: REPORTER, fromTime: F, toTime: F + 600, firstSeq: 1, count: 3, root: ROOT, index: INDEX, chain: CHAIN }),
  }
  for (const name of EVENT_TYPES) {
    test(`${name}: named, typed arguments (addresses EIP-55, hex lower case, numbers and bigints as declared)`, () => {
      const e = one(name)
      assert.ok(e, `a ${name} was emitted`)
      assert.deepEqual(e.args, expected[name]())
    })
  }

  test('the first of two bans is the address subject, decoded to its address', () => {
    const bans = events.filter((e): e is ChainEvent<'Banned'> => e.name === 'Banned')
    assert.deepEqual(bans.map((b) => decodeBanSubject(b.args.subject)), [
      { kind: 'address', address: CAROL },
      { kind: 'ip-hash', hash: IP_HASH },
    ])
  })

  test('logs of another contract are dropped; a log that is no FlyTrap event decodes to null', async () => {
    const other = await deployFlyTrap(fx.wallet(0))
    await new FlyTrapClient(other.address, fx.wallet(0)).addReporter(REPORTER, 'look-alike')
    const theirs = await getLogsChunked(fx.provider, { address: other.address, topics: [] }, other.block)
    assert.ok(theirs.length > 0)
    assert.deepEqual(decodeLogs(fx.address, theirs), [])
    assert.equal(decodeLogs(other.address, theirs).length, theirs.length)
    const foreign = { ...theirs[0]!, topics: [`0x${'ab'.repeat(32)}`] } as unknown as Log
    assert.equal(decodeLog(foreign), null)
  })

  test('reporter-only events count only from a registered reporter (reporters.ts over these events)', () => {
    const h = new ReporterHistory().addEvents(events)
    for (const e of events) assert.equal(h.admits(e), true, `${e.name} by the registered reporter`)
    const forged = { ...one('Anchored'), args: { ...one('Anchored').args, reporter: TEMP } }
    assert.equal(h.admits(forged), false, 'a removed reporter’s anchor does not count')
    assert.equal(h.admits({ ...one('Anchored'), block: 0 }), false, 'nor one from before the registration')
    assert.deepEqual([...REPORTER_ONLY].sort(), ['Anchored', 'Banned', 'DeniedSummary', 'SensitiveReport', 'SensitiveReportClear'])
  })
})

describe('ban subjects', () => {
  const ADDRESS = '0x52908400098527886E0F7030069857D2E4169EE7'

  test('an address subject round-trips (any case in, EIP-55 out) and is the address padded to 32 bytes', () => {
    const s = banSubjectForAddress(ADDRESS.toLowerCase())
    assert.equal(s, `0x${'0'.repeat(24)}${ADDRESS.slice(2).toLowerCase()}`)
    assert.deepEqual(decodeBanSubject(s), { kind: 'address', address: ADDRESS })
    assert.deepEqual(decodeBanSubject(s.toUpperCase().replace('0X', '0x')), { kind: 'address', address: ADDRESS })
    assert.equal(encodeBanSubject(decodeBanSubject(s)), s)
    assert.equal(subjectForAddress(ADDRESS), s, 'the proxy’s bans use the same codec')
  })

  test('an IP subject is HMAC-SHA256(key, tag + normalised IP) and round-trips as a hash', () => {
    for (const key of ['subject key', new Uint8Array([1, 2, 3, 250])]) {
      const want = `0x${createHmac('sha256', key).update('flytrap/ban/ip/v1:203.0.113.9').digest('hex')}`
      assert.equal(ipBanSubject('203.0.113.9', key), want)
      assert.equal(subjectForIp('::ffff:203.0.113.9', key), want, 'the proxy normalises first')
      assert.deepEqual(decodeBanSubject(want), { kind: 'ip-hash', hash: want })
      assert.equal(encodeBanSubject({ kind: 'ip-hash', hash: want.toUpperCase().replace('0X', '0x') }), want)
    }
    assert.equal(bannedAddress(IP_HASH), null)
  })

  test('malformed subjects are refused with a RangeError (and are no address)', () => {
    const bad = ['', '0x', 'banana', `0x${'0'.repeat(63)}`, `0x${'0'.repeat(65)}`, `${'0'.repeat(64)}`, `0x${'g'.repeat(64)}`, '0x52908400098527886E0F7030069857D2E4169EE7', `ip:203.0.113.9`]
    for (const s of bad) {
      assert.throws(() => decodeBanSubject(s), RangeError, JSON.stringify(s))
      assert.equal(bannedAddress(s), null, JSON.stringify(s))
    }
    assert.throws(() => encodeBanSubject({ kind: 'ip-hash', hash: '0x1234' }), RangeError)
    assert.throws(() => encodeBanSubject({ kind: 'ip-hash', hash: banSubjectForAddress(ADDRESS) }), RangeError, 'a padded address is not an IP hash')
    assert.throws(() => encodeBanSubject({ kind: 'address', address: '0x1234' }))
  })
})

describe('event text (ISO 8601 UTC to the second)', () => {
  const names = (id: string) => (id === topicId(A) ? A : id === topicId('$connect') ? '$connect' : id)
  const text: { [N in EventName]: () => string | null } = {
    TopicAdded: () => `owner ${ALICE}; pubFee 0.001 ETH; subFee 0.002 ETH; flags sensitive,open; period permanent; countries DE GB`,
    TopicFeesChanged: () => 'pubFee 0.003 ETH; subFee 0.004 ETH; period 3600 s',
    TopicCountriesChanged: () => 'countries FR',
    TopicFlagsChanged: () => 'flags sensitive',
    TopicTransferred: () => `from ${ALICE} to ${BOB}`,
    TopicRemoved: () => null,
    Granted: () => 'roles publish; until 2030-03-17T17:46:40Z',
    Revoked: () => 'roles publish',
    Joined: () => 'paid 0.002 ETH; roles subscribe; publish until none; subscribe until never',
    Withdrawn: () => `0.002 ETH to ${DAVE}`,
    AdminTransferStarted: () => `pending admin ${NEXT_ADMIN}`,
    AdminChanged: () => `admin ${ADMIN} → ${NEXT_ADMIN}`,
    RegistrationFeeChanged: () => 'registration fee 0.01 ETH',
    ReporterAdded: () => `reporter ${REPORTER}`,
    ReporterRemoved: () => `reporter ${TEMP}`,
    Banned: () => `keyed IP hash ${IP_HASH}; until 2030-03-17T17:46:40Z`,
    DeniedSummary: () => `${A}: 3; $connect: 4 refused in [2027-01-15T08:00:00Z, 2027-01-15T08:10:00Z)`,
    SensitiveReport: () => `publishers 1 (published 5), receivers 2 (received 9) in [2027-01-15T08:00:00Z, 2027-01-15T08:10:00Z); members committed, root ${MEMBERS}`,
    SensitiveReportClear: () => 'publishers 1 (published 2), receivers 2 (received 7) in [2027-01-15T08:10:00Z, 2027-01-15T08:20:00Z); members in clear',
    Anchored: () => `anchor: seq 1..3 (3 entries) in [2027-01-15T08:00:00Z, 2027-01-15T08:10:00Z); root ${ROOT}, index ${INDEX}, chain ${CHAIN}`,
  }
  for (const name of EVENT_TYPES) {
    test(`${name}`, () => assert.equal(eventText(one(name), names), text[name]()))
  }

  test('an address ban says only until when; an empty anchored period says so; the time format', () => {
    const ban = events.find((e): e is ChainEvent<'Banned'> => e.name === 'Banned' && bannedAddress(e.args.subject) === CAROL)!
    assert.equal(eventText(ban), 'until 2030-03-17T17:46:40Z')
    const empty = { ...one('Anchored'), args: { ...one('Anchored').args, count: 0 } }
    assert.match(eventText(empty)!, /^anchor: no entries \(empty period\) in \[/)
    assert.equal(isoSeconds(F), '2027-01-15T08:00:00Z')
    assert.equal(isoSeconds(BigInt(F) + 1n), '2027-01-15T08:00:01Z')
  })

  test('a time past the calendar (a uint64 anyone with a topic or a reporter key picks) is written, never thrown on', () => {
    const huge = 2n ** 64n - 2n // not FOREVER: a grant or ban "until" the contract accepts
    assert.throws(() => new Date(Number(huge) * 1000).toISOString(), RangeError, 'what the readers did before')
    assert.match(isoSeconds(huge), /^1\.844674e\+19 s after 1970 \(past the calendar's end\)$/)
    assert.match(isoFromMs(Number(huge) * 1000), /past the calendar's end/)
    const ban = events.find((e): e is ChainEvent<'Banned'> => e.name === 'Banned' && bannedAddress(e.args.subject) === CAROL)!
    assert.match(eventText({ ...ban, args: { ...ban.args, until: huge } })!, /^until 1\.844674e\+19 s after 1970/)
    assert.equal(expiryIso(huge), '1.844674e+19 s after 1970 (past the calendar\'s end)')
    assert.equal(expiryIso(FOREVER), 'never')
    assert.equal(isoFromMs(0), '1970-01-01T00:00:00.000Z')
  })
})

test('banSubjectForAddress: equals ethers zero-padding of the address in any case, and refuses what is not an address', async () => {
  const { getAddress, hexlify, randomBytes, zeroPadValue } = await import('ethers')
  for (let i = 0; i < 200; i++) {
    const lower = hexlify(randomBytes(20))
    const want = zeroPadValue(lower, 32)
    for (const spelling of [lower, getAddress(lower), '0x' + lower.slice(2).toUpperCase()]) assert.equal(banSubjectForAddress(spelling), want)
  }
  for (const bad of ['', '0x', '0x1234', 'zz' + '0'.repeat(40), '0x' + 'g'.repeat(40), '0x' + '0'.repeat(41)]) assert.throws(() => banSubjectForAddress(bad), TypeError, bad)
})

describe('decodeLog (by topic0, without ethers parseLog) against ethers parseLog', () => {
  const norm = (v: unknown): unknown => (Array.isArray(v) || (v !== null && typeof v === 'object' && Symbol.iterator in (v as object)) ? [...(v as Iterable<unknown>)].map(norm) : typeof v === 'bigint' || typeof v === 'number' ? BigInt(v).toString() : typeof v === 'boolean' ? v : String(v).toLowerCase())
  test('every real log of every kind: the same event, the same arguments in the same order', () => {
    const iface = fx.as(0).contract.interface
    let compared = 0
    for (const log of logs) {
      const theirs = iface.parseLog({ topics: [...log.topics], data: log.data })!
      const ours = decodeLog(log)!
      assert.equal(ours.name, theirs.name)
      assert.deepEqual(Object.keys(ours.args), theirs.fragment.inputs.map((i) => i.name))
      assert.deepEqual(Object.values(ours.args).map(norm), theirs.fragment.inputs.map((_, i) => norm(theirs.args[i])), `${theirs.name} at block ${log.blockNumber}`)
      compared++
    }
    assert.ok(compared >= EVENT_TYPES.length)
  })
  test('a topic0 of no event is null; a wrong number of topics or data that does not decode throws', () => {
    const log = logs.find((l) => decodeLog(l)?.name === 'Granted')!
    assert.equal(decodeLog({ ...log, topics: ['0x' + '11'.repeat(32), ...log.topics.slice(1)] } as unknown as typeof log), null)
    assert.throws(() => decodeLog({ ...log, topics: log.topics.slice(0, 2) } as unknown as typeof log))
    assert.throws(() => decodeLog({ ...log, data: '0x1234' } as unknown as typeof log))
  })
})
