/**
 * The proxy's metrics on prom-client: every name defined once with its type, decisions tallied off the
 * packet path and pushed at collection, two workers' registries summed into one exposition, and the
 * --metrics listener's /metrics, /healthz and /readyz.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { aggregateText, CONTENT_TYPE, createProxyMetrics, DecisionTally, PROXY_METRIC_NAMES, scrapeJson, scrapeText, serveMetrics, valueOf } from '../../../src/lib/proxy/metrics.js'

describe('createProxyMetrics', () => {
  test('defines every proxy metric once, plus the default process and nodejs series', async () => {
    const m = createProxyMetrics()
    m.decisions.inc({ kind: 'will', outcome: 'deny', reason: 'not_granted' })
    m.bans.inc({ source: 'chain' })
    const text = await scrapeText(m)
    const typed = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!]))
    for (const name of PROXY_METRIC_NAMES) assert.ok(typed.has(name), `${name} is exported`)
    assert.equal(typed.get('flytrap_connect_duration_seconds'), 'histogram')
    assert.equal(typed.get('flytrap_decision_duration_seconds'), 'histogram')
    assert.equal(typed.get('flytrap_upstream_connack_duration_seconds'), 'histogram')
    assert.ok(typed.has('process_cpu_user_seconds_total') && typed.has('nodejs_eventloop_lag_seconds'), 'default series')
    assert.match(text, /^flytrap_decisions_total\{kind="will",outcome="deny",reason="not_granted"\} 1$/m)
    assert.match(text, /^flytrap_bans_total\{source="chain"\} 1$/m)
  })

  test('DecisionTally counts in slots and pushes only the difference at each collection', async () => {
    const m = createProxyMetrics()
    const t = new DecisionTally(m.decisions)
    for (let i = 0; i < 5; i++) t.count('publish', true, 'granted')
    t.count('publish', false, 'no-grant')
    assert.equal(await valueOf(m.decisions, { kind: 'publish', outcome: 'allow', reason: 'granted' }), 0, 'nothing before a collection')
    m.refresh = () => t.flush()
    await scrapeText(m)
    t.count('publish', true, 'granted')
    const text = await scrapeText(m)
    assert.match(text, /^flytrap_decisions_total\{kind="publish",outcome="allow",reason="granted"\} 6$/m)
    assert.match(text, /^flytrap_decisions_total\{kind="publish",outcome="deny",reason="no-grant"\} 1$/m)
    let sampled = 0
    for (let i = 0; i < DecisionTally.SAMPLE * 3; i++) if (t.sample()) sampled++
    assert.equal(sampled, 3)
  })

  test('two workers aggregate: counters and histograms summed, gauges by their aggregator', async () => {
    const a = createProxyMetrics()
    const b = createProxyMetrics()
    a.connections.inc({ outcome: 'open' }, 3)
    b.connections.inc({ outcome: 'open' }, 4)
    a.connectSeconds.observe(0.002)
    b.connectSeconds.observe(0.003)
    a.bansActive.set(2)
    b.bansActive.set(2)
    a.block.set(10)
    b.block.set(12)
    const text = await aggregateText([await scrapeJson(a), await scrapeJson(b)])
    assert.match(text, /^flytrap_connections_total\{outcome="open"\} 7$/m)
    assert.match(text, /^flytrap_connect_duration_seconds_count 2$/m)
    assert.match(text, /^flytrap_bans_active 2$/m, 'shared bans are not double counted')
    assert.match(text, /^flytrap_policy_block 10$/m, 'the cluster is as current as its slowest worker')
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
  test('/metrics, /healthz, /readyz (503 until ready); anything else is 404', async () => {
    const m = createProxyMetrics()
    let ready = false
    const srv = await serveMetrics('127.0.0.1:0', { metrics: () => scrapeText(m), readiness: async () => ({ ready, checks: { policySynced: ready, brokerUp: true } }) })
    try {
      m.connectionsOpen.set(2)
      const r = await get(srv.address.port, '/metrics')
      assert.equal(r.status, 200)
      assert.equal(r.type, CONTENT_TYPE)
      assert.match(r.body, /^flytrap_connections_open 2$/m)
      assert.equal((await get(srv.address.port, '/healthz')).status, 200)
      const notReady = await get(srv.address.port, '/readyz')
      assert.equal(notReady.status, 503)
      assert.equal(JSON.parse(notReady.body).checks.policySynced, false)
      ready = true
      assert.equal((await get(srv.address.port, '/readyz')).status, 200)
      assert.equal((await get(srv.address.port, '/metrics', 'HEAD')).body, '')
      assert.equal((await get(srv.address.port, '/')).status, 404)
      assert.equal((await get(srv.address.port, '/metrics', 'POST')).status, 405)
    } finally {
      await srv.close()
    }
  })
})
