import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import {
  CONTENT_TYPE,
  PROXY_METRIC_NAMES,
  Registry,
  parseHostPort,
  createProxyMetrics,
  serveMetrics,
} from '../../../src/lib/proxy/metrics.js'
import { FlytrapError } from '../../../src/lib/errors.js'

describe('Registry.render', () => {
  test('exact text format 0.0.4', () => {
    const r = new Registry()
    const conns = r.counter('flytrap_connections_total', 'Client connections, by outcome.', ['outcome'])
    const open = r.gauge('flytrap_connections_open', 'Open connections.')
    const dec = r.counter('flytrap_decisions_total', 'Decisions.', ['kind', 'outcome', 'reason'])
    const empty = r.counter('labelled_unused_total', 'Never incremented.', ['x'])
    conns.inc({ outcome: 'accepted' })
    conns.inc({ outcome: 'accepted' }, 2)
    conns.inc({ outcome: 'refused' })
    open.set(7)
    open.dec()
    dec.inc({ kind: 'publish', outcome: 'deny', reason: 'not_granted' })
    assert.equal(empty.get({ x: 'a' }), 0)
    assert.equal(
      r.render(),
      [
        '# HELP flytrap_connections_total Client connections, by outcome.',
        '# TYPE flytrap_connections_total counter',
        'flytrap_connections_total{outcome="accepted"} 3',
        'flytrap_connections_total{outcome="refused"} 1',
        '# HELP flytrap_connections_open Open connections.',
        '# TYPE flytrap_connections_open gauge',
        'flytrap_connections_open 6',
        '# HELP flytrap_decisions_total Decisions.',
        '# TYPE flytrap_decisions_total counter',
        'flytrap_decisions_total{kind="publish",outcome="deny",reason="not_granted"} 1',
        '# HELP labelled_unused_total Never incremented.',
        '# TYPE labelled_unused_total counter',
        '',
      ].join('\n'),
    )
  })

  test('an unlabelled metric renders 0 before its first update', () => {
    const r = new Registry()
    r.counter('a_total', 'A.')
    assert.equal(r.render(), '# HELP a_total A.\n# TYPE a_total counter\na_total 0\n')
  })

  test('label values and help are escaped', () => {
    const r = new Registry()
    const c = r.counter('esc_total', 'Help with \\ backslash\nand newline and "quotes".', ['v'])
    c.inc({ v: 'a"b\\c\nd' })
    assert.equal(
      r.render(),
      '# HELP esc_total Help with \\\\ backslash\\nand newline and "quotes".\n' +
        '# TYPE esc_total counter\n' +
        'esc_total{v="a\\"b\\\\c\\nd"} 1\n',
    )
  })

  test('special values, fractions, numeric labels, missing labels', () => {
    const r = new Registry()
    const g = r.gauge('g', 'G.', ['k', 'l'])
    g.set({ k: 1, l: 'x' }, 0.25)
    g.set({ k: 'nan' } as { k: string; l: string }, NaN)
    g.set({ k: 'inf', l: '' }, Infinity)
    g.set({ k: '-inf', l: '' }, -Infinity)
    assert.equal(
      r.render(),
      '# HELP g G.\n# TYPE g gauge\n' + 'g{k="1",l="x"} 0.25\n' + 'g{k="nan",l=""} NaN\n' + 'g{k="inf",l=""} +Inf\n' + 'g{k="-inf",l=""} -Inf\n',
    )
  })

  test('bound series and get()', () => {
    const r = new Registry()
    const p = r.counter('p_total', 'P.', ['direction'])
    const in_ = p.labels({ direction: 'in' })
    in_.inc()
    in_.inc(4)
    p.inc({ direction: 'in' })
    assert.equal(p.get({ direction: 'in' }), 6)
    assert.equal(in_.get(), 6)
    assert.equal(p.get({ direction: 'out' }), 0)
    const g = r.gauge('open', 'O.').labels({})
    g.inc(3)
    g.dec()
    g.set(g.get() * 10)
    assert.equal(r.get('open')?.get(), 20)
  })

  test('counters refuse to go down; names are validated; duplicates refused', () => {
    const r = new Registry()
    const c = r.counter('c_total', 'C.')
    assert.throws(() => c.inc(-1), RangeError)
    assert.throws(() => c.inc(NaN), RangeError)
    assert.throws(() => c.labels({}).inc(-2), RangeError)
    assert.throws(() => r.counter('c_total', 'again'), /already registered/)
    assert.throws(() => r.counter('1bad', 'x'), /invalid metric name/)
    assert.throws(() => r.counter('ok_total', 'x', ['__reserved']), /invalid label name/)
    assert.throws(() => r.counter('ok2_total', 'x', ['a-b']), /invalid label name/)
    assert.throws(() => r.counter('ok3_total', 'x', ['a', 'a']), /duplicate label/)
  })

  test('series per metric are capped', () => {
    const r = new Registry(3)
    const c = r.counter('capped_total', 'C.', ['v'])
    for (let i = 0; i < 10; i++) c.inc({ v: String(i) })
    c.inc({ v: '0' })
    assert.equal(r.droppedSeries, 7)
    assert.equal(c.get({ v: '0' }), 2)
    assert.equal(r.render().split('\n').filter((l) => l.startsWith('capped_total{')).length, 3)
  })

  test('reset', () => {
    const r = new Registry()
    const c = r.counter('r_total', 'R.', ['x'])
    const u = r.gauge('u', 'U.')
    c.inc({ x: 'a' })
    u.set(5)
    c.reset()
    u.reset()
    assert.equal(r.render(), '# HELP r_total R.\n# TYPE r_total counter\n# HELP u U.\n# TYPE u gauge\nu 0\n')
  })
})

describe('createProxyMetrics', () => {
  test('defines every proxy metric once, with its type and labels', () => {
    const m = createProxyMetrics()
    m.decisions.inc({ kind: 'will', outcome: 'deny', reason: 'not_granted' })
    m.bans.inc({ source: 'chain' })
    m.packets.inc({ direction: 'in' })
    m.malformed.inc({ reason: 'bad_signature' })
    m.connections.inc({ outcome: 'accepted' })
    const text = m.registry.render()
    const typed = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1], x[2]])
    assert.deepEqual(
      typed.map((t) => t[0]),
      [...PROXY_METRIC_NAMES],
    )
    assert.deepEqual(Object.fromEntries(typed), {
      flytrap_connections_total: 'counter',
      flytrap_connections_open: 'gauge',
      flytrap_decisions_total: 'counter',
      flytrap_bans_total: 'counter',
      flytrap_bans_active: 'gauge',
      flytrap_policy_synced: 'gauge',
      flytrap_policy_block: 'gauge',
      flytrap_policy_sync_lag_seconds: 'gauge',
      flytrap_ban_reports_dropped_total: 'counter',
      flytrap_packets_total: 'counter',
      flytrap_malformed_packets_total: 'counter',
      flytrap_upstream_up: 'gauge',
      flytrap_upstream_sessions: 'gauge',
      flytrap_upstream_refusals_total: 'counter',
      flytrap_upstream_failures_total: 'counter',
    })
    assert.match(text, /^flytrap_decisions_total\{kind="will",outcome="deny",reason="not_granted"\} 1$/m)
    assert.match(text, /^flytrap_bans_total\{source="chain"\} 1$/m)
    assert.match(text, /^flytrap_policy_synced 0$/m)
  })
})

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('serveMetrics', () => {
  test('GET /metrics renders the registry after refreshing; anything else is 404', async () => {
    const m = createProxyMetrics()
    let scrapes = 0
    const srv = await serveMetrics('127.0.0.1:0', m.registry, () => {
      scrapes++
      m.syncLag.set(scrapes * 1.5)
    })
    try {
      assert.equal(srv.address.host, '127.0.0.1')
      assert.ok(srv.address.port > 0)
      m.connectionsOpen.set(2)
      const r = await get(srv.address.port, '/metrics')
      assert.equal(r.status, 200)
      assert.equal(r.type, CONTENT_TYPE)
      assert.equal(r.body, m.registry.render())
      assert.match(r.body, /^flytrap_connections_open 2$/m)
      assert.match(r.body, /^flytrap_policy_sync_lag_seconds 1.5$/m)
      assert.equal((await get(srv.address.port, '/metrics?x=1')).status, 200)
      assert.equal(scrapes, 2)
      const head = await get(srv.address.port, '/metrics', 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
      assert.equal((await get(srv.address.port, '/')).status, 404)
      assert.equal((await get(srv.address.port, '/metrics/')).status, 404)
      assert.equal((await get(srv.address.port, '/metrics', 'POST')).status, 404)
    } finally {
      await srv.close()
    }
    await assert.rejects(get(srv.address.port, '/metrics'), /ECONNREFUSED/)
  })

  test('a failing refresh answers 500 and the server keeps serving', async () => {
    const r = new Registry()
    let fail = true
    const srv = await serveMetrics('127.0.0.1:0', r, () => {
      if (fail) throw new Error('boom')
    })
    try {
      assert.equal((await get(srv.address.port, '/metrics')).status, 500)
      fail = false
      assert.equal((await get(srv.address.port, '/metrics')).status, 200)
    } finally {
      await srv.close()
    }
  })

  test('a port in use is a config error', async () => {
    const a = await serveMetrics('127.0.0.1:0', new Registry())
    try {
      await assert.rejects(serveMetrics(`127.0.0.1:${a.address.port}`, new Registry()), (err: unknown) => err instanceof FlytrapError && err.exit === 3 && /EADDRINUSE/.test(err.message))
    } finally {
      await a.close()
    }
  })

  test('parseHostPort', () => {
    assert.deepEqual(parseHostPort('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 })
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 })
    assert.deepEqual(parseHostPort('localhost:80'), { host: 'localhost', port: 80 })
    for (const bad of ['9464', ':9464', '::1:9464', '[::1]', 'host:65536', 'host:-1', 'host:']) {
      assert.throws(() => parseHostPort(bad), (err: unknown) => err instanceof FlytrapError && err.exit === 2, bad)
    }
  })
})
