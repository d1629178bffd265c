import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { PROTOTYPE_2020, formatTable, measureGas, verdict, type Row } from '../../scripts/gas-table.js'

let fx: ChainFixture
let rows: Row[]
const gas = (operation: string): number => {
  const r = rows.find((x) => x.operation === operation)
  assert.ok(r, `no row "${operation}"`)
  return r.gas
}

before(async () => {
  fx = await chainFixture({ deploy: false }) // measureGas deploys its own contract
  rows = await measureGas(fx.rpcUrl)
  console.log(`\n${formatTable(rows)}\n`)
})
after(async () => {
  await fx?.close()
})

describe('gas table', () => {
  test('every operation is measured, in order', () => {
    assert.deepEqual(
      rows.map((r) => r.operation),
      [
        'deploy',
        'addTopic (fees + sensitive + open)',
        'addTopic (no fees)',
        'addTopic (2 countries)',
        'addTopic (fees + open + period)',
        'setFees',
        'setCountries (2 codes, none before)',
        'setFlags',
        'transferTopic',
        'removeTopic',
        'allow (first grant, one role)',
        'allow (second role on existing grant)',
        'revoke (one of two roles)',
        'revoke (last role: clears the slot)',
        'join (pay, one role)',
        'withdraw',
        'addReporter',
        'recordBans (1 subject)',
        'recordBans (10 subjects)',
        'recordBans, per subject (10 per tx)',
        'recordDenied (10 topics)',
        'recordSensitive (10 + 10 addresses)',
        'anchor (first of a reporter, 1,250 entries)',
        'anchor (next period, 10 entries)',
        'anchor (next period, 10,000,000 entries)',
        'anchor (empty period)',
      ],
    )
  })

  test('figures are plausible receipt gas', () => {
    for (const r of rows) {
      assert.ok(Number.isInteger(r.gas), r.operation)
      if (r.operation.includes('per subject')) continue
      assert.ok(r.gas > 21_000 && r.gas < 30_000_000, `${r.operation}: ${r.gas}`)
    }
    assert.ok(gas('deploy') > 1_000_000)
    assert.equal(gas('recordBans, per subject (10 per tx)'), Math.round(gas('recordBans (10 subjects)') / 10))
  })

  test('verdict and table formatting', () => {
    assert.equal(verdict(90, 100), 'better (-10 %)')
    assert.equal(verdict(100, 100), 'better (0 %)')
    assert.equal(verdict(112_345, 100_000), 'worse (+12.3 %)')
    assert.equal(verdict(5, null), '')
    const table = formatTable(rows).split('\n')
    assert.equal(table[0], '| operation | gas | 2020 prototype | verdict |')
    assert.equal(table.length, rows.length + 2)
    assert.match(table.find((l) => l.startsWith('| allow (first grant'))!, /\| 56,000 \| better \(-[\d.]+ %\) \|$/)
  })
})

describe('no worse than the 2020 prototype', () => {
  const cases: [string, number][] = [
    ['addTopic (fees + sensitive + open)', PROTOTYPE_2020.addTopic],
    ['allow (first grant, one role)', PROTOTYPE_2020.grant],
    ['revoke (last role: clears the slot)', PROTOTYPE_2020.revoke],
    ['recordBans, per subject (10 per tx)', PROTOTYPE_2020.ban],
    ['recordBans (1 subject)', PROTOTYPE_2020.ban],
    ['recordSensitive (10 + 10 addresses)', PROTOTYPE_2020.sensitive],
  ]
  for (const [operation, limit] of cases) {
    test(`${operation} ≤ ${limit.toLocaleString('en-US')}`, () => {
      assert.ok(gas(operation) <= limit, `${operation}: ${gas(operation)} > ${limit}`)
      const r = rows.find((x) => x.operation === operation)!
      assert.equal(r.prototype2020, limit)
      assert.match(r.verdict, /^better /)
    })
  }
  test('the 2020 figures are the agreed ones', () => {
    assert.deepEqual(PROTOTYPE_2020, { addTopic: 103_000, grant: 56_000, revoke: 31_000, ban: 28_800, sensitive: 64_500 })
  })
})

describe('storage design claims', () => {
  test('a second role on an existing grant is cheaper than the first grant (same slot)', () => {
    assert.ok(gas('allow (second role on existing grant)') < gas('allow (first grant, one role)') - 10_000)
  })
  test('revoking the last role (slot cleared, refund) is cheaper than revoking one of two', () => {
    assert.ok(gas('revoke (last role: clears the slot)') < gas('revoke (one of two roles)'))
  })
  test('fees cost nothing extra at registration (packed in the topic slot)', () => {
    assert.ok(Math.abs(gas('addTopic (fees + sensitive + open)') - gas('addTopic (no fees)')) < 2_000)
  })
  test('every anchor ≤ 40 k gas, O(1) in traffic; an empty period costs less', () => {
    const anchors = rows.filter((r) => r.operation.startsWith('anchor'))
    assert.equal(anchors.length, 4)
    for (const r of anchors) assert.ok(r.gas <= 40_000, `${r.operation}: ${r.gas}`)
    assert.ok(Math.abs(gas('anchor (next period, 10,000,000 entries)') - gas('anchor (next period, 10 entries)')) <= 200)
    assert.ok(gas('anchor (empty period)') < gas('anchor (next period, 10 entries)'))
  })
  test('batching bans amortises the transaction cost', () => {
    assert.ok(gas('recordBans (10 subjects)') < 3 * gas('recordBans (1 subject)'))
  })
})
