/**
 * proveEntries: each entry's own Merkle proof, from its content, against the anchored root of its range —
 * never "an anchor covers this time".
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { openJournal } from '../../../src/lib/audit/journal.js'
import { listSegments, readRecords } from '../../../src/lib/audit/journal-files.js'
import { proveEntries, type AnchorLike } from '../../../src/lib/audit/proofs.js'
import { tempDirs } from '../../helpers/tmp.js'

const tempData = tempDirs('flytrap-proofs-')

const P = 60_000
const T = 1_800_000_000_000 // a period start (multiple of P)

describe('proveEntries', () => {
  test('proven only by the anchored root of its range; an edited entry fails alone; a wrong count or root fails all', async () => {
    const dataDir = tempData()
    let clock = T + 1_000
    const journal = await openJournal({ dataDir, periodMs: P, now: () => clock })
    for (let i = 0; i < 5; i++) {
      clock = T + 1_000 + i * 1_000
      await journal.append({ kind: 'publish', outcome: 'allow', reason: 'granted', address: '0x00000000000000000000000000000000000000aa', topic: `t/${i}` })
    }
    clock = T + P + 1_000
    await journal.append({ kind: 'publish', outcome: 'allow', reason: 'granted', topic: 'later' }) // next period: no anchor
    const period = await journal.periodRoot(T / P)
    await journal.close()
    const anchor: AnchorLike = { fromTime: T / 1000, toTime: (T + P) / 1000, count: period.count, root: period.root, txHash: '0xa1', blockNumber: 7 }
    const wanted = new Map<number, number>()
    for await (const { record } of readRecords(dataDir)) wanted.set(record.seq, record.t)

    const ok = await proveEntries(dataDir, [anchor], wanted)
    assert.deepEqual([...ok].map(([seq, c]) => [seq, c.proven]), [[1, true], [2, true], [3, true], [4, true], [5, true], [6, false]])
    assert.equal(ok.get(6)!.anchor, null, 'no anchor covers the later entry')
    assert.equal(ok.get(3)!.anchor?.txHash, '0xa1')

    // A root for the same time range that is not this tree's, or a count that differs: nothing is proven.
    const forged = await proveEntries(dataDir, [{ ...anchor, root: `0x${'11'.repeat(32)}` }], wanted)
    assert.ok([...forged.values()].every((c) => !c.proven))
    const short = await proveEntries(dataDir, [{ ...anchor, count: anchor.count - 1 }], wanted)
    assert.ok([...short.values()].every((c) => !c.proven))

    // Entry 3's content edited on disk: it alone is no longer proven.
    const file = (await listSegments(dataDir))[0]!.path
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace('"topic":"t/2"', '"topic":"t/X"'))
    const edited = await proveEntries(dataDir, [anchor], wanted)
    assert.deepEqual([...edited].map(([seq, c]) => [seq, c.proven]), [[1, true], [2, true], [3, false], [4, true], [5, true], [6, false]])
  })
})
