/**
 * Private grant reasons (src/lib/chain/reasons.ts, src/lib/config/reasons.ts): the on-chain encoding
 * recomputed byte by byte, parsing, checking a disclosure, how reports display them, which chains are public,
 * and the owner's reasons.jsonl (durable append, a torn last line, lines that do not open their commitment).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256 } from 'ethers'
import { checkReason, commitReason, displayReason, isPublicChain, parseReason, reasonCommitment } from '../../../src/lib/chain/reasons.js'
import { appendReason, readReasons, type ReasonLine } from '../../../src/lib/config/reasons.js'

const SALT = keccak256(Buffer.from('a salt'))
const TEXT = 'wearable of patient P-1'

describe('reason commitments', () => {
  test('commit:0x<keccak256(0x07 || salt || utf8(reason))>, lower-case hex, 73 characters', () => {
    const c = commitReason(TEXT, SALT)
    const expected = keccak256(Buffer.concat([Buffer.from([7]), Buffer.from(SALT.slice(2), 'hex'), Buffer.from(TEXT, 'utf8')]))
    assert.equal(c.commitment, expected)
    assert.equal(c.onChain, `commit:${expected}`)
    assert.equal(c.onChain.length, 73)
    assert.ok(!c.onChain.includes('patient'))
    assert.notEqual(commitReason(TEXT).commitment, commitReason(TEXT).commitment, 'a fresh random salt each time')
    assert.equal(reasonCommitment(SALT, TEXT), expected)
  })

  test('parse: only the exact form is a commitment; anything else is clear text', () => {
    const c = commitReason(TEXT, SALT)
    assert.deepEqual(parseReason(c.onChain), { committed: true, commitment: c.commitment })
    for (const s of ['', 'installer request', `commit:${c.commitment.toUpperCase()}`, `commit:${c.commitment} `, `commit:${c.commitment.slice(0, 65)}`]) assert.equal(parseReason(s).committed, false, s)
  })

  test('a disclosure checks only with the right text and salt', () => {
    const { commitment } = commitReason(TEXT, SALT)
    assert.equal(checkReason(commitment, SALT, TEXT), true)
    assert.equal(checkReason(commitment, SALT, `${TEXT} `), false)
    assert.equal(checkReason(commitment, keccak256(Buffer.from('other')), TEXT), false)
    assert.equal(checkReason(commitment, '0x12', TEXT), false)
  })

  test('display: clear as it is; committed, disclosed and checked, or not disclosed (a disclosure that does not open is not shown)', () => {
    const c = commitReason(TEXT, SALT)
    assert.deepEqual(displayReason('site feed'), { reason: 'site feed', committed: false, disclosed: false })
    assert.deepEqual(displayReason(c.onChain), { reason: `[committed ${c.commitment}; not disclosed]`, committed: true, disclosed: false })
    const good = new Map([[c.commitment, { commitment: c.commitment, salt: SALT, text: TEXT }]])
    assert.deepEqual(displayReason(c.onChain, good), { reason: `${TEXT} [committed ${c.commitment}; disclosed, checks]`, committed: true, disclosed: true })
    const lying = new Map([[c.commitment, { commitment: c.commitment, salt: SALT, text: 'routine maintenance' }]])
    assert.equal(displayReason(c.onChain, lying).disclosed, false)
  })

  test('public chains: anything but 31337 / 1337 and the ones listed as permissioned', () => {
    assert.deepEqual([1, 11155111, 137, 31337, 1337].map((id) => isPublicChain(id)), [true, true, true, false, false])
    assert.equal(isPublicChain(4242, [4242]), false)
  })
})

describe('reasons.jsonl', () => {
  const line = (text: string, salt = SALT): ReasonLine => {
    const c = commitReason(text, salt)
    return { v: 1, commitment: c.commitment, salt: c.salt, text, chainId: 1, contract: '0x' + '00'.repeat(20), topic: 'ward/vitals', client: '0x' + '11'.repeat(20), action: 'allow', at: 1 }
  }

  test('appended lines are read back by commitment; a line that does not open its commitment is skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flytrap-reasons-'))
    const path = await appendReason(line(TEXT), dir)
    await appendReason({ ...line('second'), text: 'edited afterwards' }, dir)
    assert.equal(path, join(dir, 'reasons.jsonl'))
    const m = readReasons(dir)
    assert.deepEqual([...m.values()].map((d) => d.text), [TEXT])
    assert.equal(readReasons(join(dir, 'none')).size, 0)
  })

  test('a torn last line (a crash mid-append) neither breaks reading nor swallows the next line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flytrap-reasons-'))
    await appendReason(line('one'), dir)
    appendFileSync(join(dir, 'reasons.jsonl'), '{"v":1,"commitment":"0x12')
    await appendReason(line('two', keccak256(Buffer.from('salt 2'))), dir)
    assert.deepEqual([...readReasons(dir).values()].map((d) => d.text).sort(), ['one', 'two'])
    assert.equal(readFileSync(join(dir, 'reasons.jsonl'), 'utf8').split('\n').length, 4)
    writeFileSync(join(dir, 'reasons.jsonl'), 'not json\n')
    assert.equal(readReasons(dir).size, 0)
  })
})
