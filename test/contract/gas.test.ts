import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { MAX_DEPTH, PROTOTYPE_2020, formatTable, measureGas, verdict, type Row } from '../../scripts/gas-table.js'

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
        ...Array.from({ length: MAX_DEPTH }, (_, i) => [`addTopic, depth ${i + 1}, new path`, `addTopic, depth ${i + 1}, beside a name`]).flat(),
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
        'recordSensitive (commitment; 10 + 10 addresses or any number)',
        'recordSensitiveClear (10 + 10 addresses)',
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
  // addTopic is not here: the 2020 contract checked no namespace. Its figures are in 'namespace check' below.
  const cases: [string, number][] = [
    ['allow (first grant, one role)', PROTOTYPE_2020.grant],
    ['revoke (last role: clears the slot)', PROTOTYPE_2020.revoke],
    ['recordBans, per subject (10 per tx)', PROTOTYPE_2020.ban],
    ['recordBans (1 subject)', PROTOTYPE_2020.ban],
    ['recordSensitive (commitment; 10 + 10 addresses or any number)', PROTOTYPE_2020.sensitive],
    ['recordSensitiveClear (10 + 10 addresses)', PROTOTYPE_2020.sensitive],
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

describe('namespace check (one node per level of the claim path)', () => {
  test('at depth 1 addTopic still costs less than the 2020 prototype, which checked nothing', () => {
    assert.ok(gas('addTopic, depth 1, beside a name') < PROTOTYPE_2020.addTopic)
    assert.ok(gas('addTopic, depth 1, new path') < PROTOTYPE_2020.addTopic)
  })
  test('each further level costs one node: ~5 k beside a name, a fresh slot (~25 k) on a new path', () => {
    for (let d = 2; d <= MAX_DEPTH; d++) {
      const beside = gas(`addTopic, depth ${d}, beside a name`) - gas(`addTopic, depth ${d - 1}, beside a name`)
      const fresh = gas(`addTopic, depth ${d}, new path`) - gas(`addTopic, depth ${d - 1}, new path`)
      assert.ok(beside > 5_000 && beside < 9_000, `depth ${d} beside: +${beside}`)
      assert.ok(fresh > 22_100 && fresh < 27_000, `depth ${d} new path: +${fresh}`)
    }
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
