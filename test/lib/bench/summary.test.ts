import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { junitSummary, markdownSummary, xmlEscape, type SummaryInput } from '../../../src/lib/bench/summary.js'

const input = (): SummaryInput => ({
  title: 'flytrap bench latency (profile ci)',
  seconds: 12.3,
  results: [
    ['CONNECT added p50', 0.712, 'ms'],
    ['not measured', undefined, 'ms'],
    ['pipelined <QoS 1> | FlyTrap', 21000, 'msg/s'],
  ],
  gate: {
    ok: false,
    thresholds: [
      { expr: 'connect.addedMs.p50<0.5', actual: 0.712, ok: false },
      { expr: 'throughput.ratioToDirect>0.3', actual: 0.41, ok: true },
      { expr: 'tls.connect.addedMs.p50<1 & "x"', actual: null, ok: false },
    ],
    baseline: { file: 'prev.json', tolerancePct: 10, checks: [{ metric: 'tcp.throughput.flytrap', direction: 'higher', baseline: 42000, now: 21000, changePct: -50, ok: false }, { metric: 'tcp.connect.addedMs.p50', direction: 'lower', baseline: 0.7, now: 0.712, changePct: 1.7, ok: true }] },
  },
})

/** A minimal XML well-formedness check: every tag closes in order, attributes are quoted, no raw & or <. */
function wellFormed(xml: string): { tag: string; attrs: Record<string, string>; text: string }[] {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '')
  const stack: string[] = []
  const seen: { tag: string; attrs: Record<string, string>; text: string }[] = []
  const re = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>|([^<]+)/g
  let m: RegExpExecArray | null
  let pos = 0
  while ((m = re.exec(body))) {
    assert.equal(m.index, pos, `unparsable XML at ${pos}: ${body.slice(pos, pos + 40)}`)
    pos = re.lastIndex
    if (m[5] !== undefined) {
      assert.doesNotMatch(m[5], /&(?!(amp|lt|gt|quot|apos);)|>/, 'text escaped')
      if (seen.length) seen[seen.length - 1]!.text += m[5]
      continue
    }
    if (m[1]) assert.equal(stack.pop(), m[2], 'closing tag matches')
    else {
      const attrs = Object.fromEntries([...m[3]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]))
      seen.push({ tag: m[2]!, attrs, text: '' })
      if (!m[4]) stack.push(m[2]!)
    }
  }
  assert.equal(pos, body.length, 'whole document parsed')
  assert.deepEqual(stack, [], 'every element closed')
  return seen
}

describe('bench summary', () => {
  test('JUnit: well-formed, one testcase per check, failures as <failure>, text escaped', () => {
    const xml = junitSummary(input())
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites /)
    const els = wellFormed(xml)
    const cases = els.filter((e) => e.tag === 'testcase')
    assert.equal(cases.length, 5)
    assert.deepEqual(cases.map((c) => c.attrs.name), ['connect.addedMs.p50&lt;0.5', 'throughput.ratioToDirect&gt;0.3', 'tls.connect.addedMs.p50&lt;1 &amp; &quot;x&quot;', 'tcp.throughput.flytrap', 'tcp.connect.addedMs.p50'])
    assert.equal(els.filter((e) => e.tag === 'failure').length, 3)
    const suite = els.find((e) => e.tag === 'testsuite')!
    assert.equal(suite.attrs.tests, '5')
    assert.equal(suite.attrs.failures, '3')
    assert.match(xml, /<failure message="tcp.throughput.flytrap regressed -50.0 %/)
  })

  test('JUnit: no checks is still a well-formed empty suite', () => {
    const xml = junitSummary({ ...input(), gate: { ok: true, thresholds: [] } })
    wellFormed(xml)
    assert.match(xml, /tests="0" failures="0"/)
  })

  test('xmlEscape drops characters XML cannot carry', () => {
    assert.equal(xmlEscape('a\u0001b<&>"\''), 'ab&lt;&amp;&gt;&quot;&apos;')
  })

  test('Markdown: results, thresholds and baseline tables; pipes escaped; unmeasured rows left out', () => {
    const md = markdownSummary(input())
    assert.match(md, /^### flytrap bench latency \(profile ci\) — FAILED\n/)
    assert.match(md, /\| CONNECT added p50 \| 0\.712 ms \|/)
    assert.match(md, /\| pipelined <QoS 1> \\\| FlyTrap \| 21000 msg\/s \|/)
    assert.doesNotMatch(md, /not measured/)
    assert.match(md, /\| `connect\.addedMs\.p50<0\.5` \| 0\.712 \| ❌ fail \|/)
    assert.match(md, /\| `tls\.connect\.addedMs\.p50<1 & "x"` \| n\/a \| ❌ fail \|/)
    assert.match(md, /\| tcp\.throughput\.flytrap \| higher \| 42000 \| 21000 \| -50\.0 % \| ❌ regressed \|/)
    // Every table row has the same number of unescaped cells as its header.
    for (const block of md.split('\n\n').filter((b) => b.startsWith('|') || b.includes('\n|'))) {
      const rows = block.split('\n').filter((l) => l.startsWith('|'))
      const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length
      assert.ok(rows.every((r) => cells(r) === cells(rows[0]!)), block)
    }
    assert.match(markdownSummary({ ...input(), gate: { ok: true, thresholds: [] } }), /— passed/)
  })
})
