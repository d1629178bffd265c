/**
 * `flytrap audit report` against a real anvil: a deployment recorded by the CLI, a short history written with
 * the contract client, a journal in the default data directory; the report as a table, JSON and CSV, for a
 * time range, a topic and a client. In-process (the CSV on stdout also through the binary). Needs dist/
 * (npx tsc -p tsconfig.json) and an up-to-date oclif.manifest.json.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet, parseEther } from 'ethers'
import { startAnvil, ANVIL_DEV_KEYS, type AnvilHandle } from '../../src/lib/dev/anvil.js'
import { connect, FlyTrapClient } from '../../src/lib/chain/client.js'
import { openJournal } from '../../src/lib/audit/journal.js'
import { subjectForAddress } from '../../src/lib/proxy/bans.js'
import type { AuditReportResult } from '../../src/commands/audit/report.js'
import { runCli, runInProcess, tempCwd } from '../helpers/cli.js'

const OWNER = ANVIL_DEV_KEYS[0]
const REPORTER = ANVIL_DEV_KEYS[1]
const DEVICE = ANVIL_DEV_KEYS[2]
const DEVICE_ADDR = new Wallet(DEVICE).address
const OTHER = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'

describe('audit report (CLI, anvil)', () => {
  let anvil: AnvilHandle
  let cwd: string
  let from: string
  let flytrap: (args: string[]) => ReturnType<typeof runInProcess>

  before(async () => {
    anvil = await startAnvil()
    cwd = tempCwd()
    flytrap = (args) => runInProcess(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined, FLYTRAP_DATA_DIR: undefined } })
    const deploy = await flytrap(['contract', 'deploy', '--key', OWNER, '--json'])
    assert.equal(deploy.code, 0, deploy.stderr)
    const { address } = deploy.json<{ address: string }>()
    const { provider } = await connect(anvil.rpcUrl)
    try {
      const latest = (await provider.getBlock('latest'))!.timestamp
      from = new Date((latest - 5) * 1000).toISOString()
      const owner = new FlyTrapClient(address, new Wallet(OWNER, provider))
      const reporter = new FlyTrapClient(address, new Wallet(REPORTER, provider))
      const device = new FlyTrapClient(address, new Wallet(DEVICE, provider))
      await owner.addReporter(new Wallet(REPORTER).address, 'proxy')
      await owner.addTopic({ name: 'plant/valve', pubFee: 0n, subFee: parseEther('0.01'), sensitive: true, open: true, period: 0, countries: '0x', reason: 'ticket 7, "urgent"' })
      await owner.addTopic({ name: 'office/lights', pubFee: 0n, subFee: 0n, sensitive: false, open: false, period: 0, countries: '0x', reason: 'facilities' })
      await owner.allow('plant/valve', OTHER, 1, 0, 'installer')
      await owner.allow('office/lights', OTHER, 3, 0, 'facilities')
      await device.join('plant/valve', 2, 1, parseEther('0.01'))
      await reporter.recordBans([subjectForAddress(DEVICE_ADDR)], [Math.floor(Date.now() / 1000) + 3600], 'threshold')
    } finally {
      provider.destroy()
    }
    // The proxy's journal in the default data directory (.flytrap/proxy).
    const journal = await openJournal({ dataDir: join(cwd, '.flytrap', 'proxy'), periodMs: 60_000 })
    await journal.append({ kind: 'subscribe', outcome: 'allow', reason: 'joined', address: DEVICE_ADDR, clientId: 'dev', topic: 'plant/valve' })
    await journal.append({ kind: 'publish', outcome: 'deny', reason: 'not-member', address: DEVICE_ADDR, clientId: 'dev', topic: 'office/lights' })
    await journal.close()
  })
  after(async () => anvil?.stop())

  test('a table by default: chain events and journal rows, with the journal merged from .flytrap/proxy', async () => {
    const r = await flytrap(['audit', 'report', '--from', from])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /┌/)
    for (const word of ['ReporterAdded', 'TopicAdded', 'Granted', 'Joined', 'Banned', 'subscribe', 'publish', 'plant/valve', 'office/lights']) assert.match(r.stdout, new RegExp(word.replace('/', '\\/')))
    assert.match(r.stdout, /journal .*proxy: 2 entries/)
  })

  test('on an 80-column terminal every line fits (rows stacked one field per line); --wide and a pipe keep the full table', async () => {
    // eslint-disable-next-line no-control-regex -- ANSI colour codes
    const width = (text: string) => Math.max(...text.replace(/\u001b\[[0-9;]*m/g, '').split('\n').map((l) => [...l].length))
    const env = { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined, FLYTRAP_DATA_DIR: undefined }
    const narrow = await runInProcess(['audit', 'report', '--from', from], { cwd, env, terminalColumns: 80 })
    const wide = await runInProcess(['audit', 'report', '--from', from, '--wide'], { cwd, env, terminalColumns: 80 })
    const piped = await flytrap(['audit', 'report', '--from', from])
    assert.equal(narrow.code, 0, narrow.stderr)
    assert.ok(width(piped.stdout) > 120, `the full table is wider than 120 columns (${width(piped.stdout)}): else this test proves nothing`)
    assert.ok(width(narrow.stdout) <= 80, `a line is ${width(narrow.stdout)} columns wide:\n${narrow.stdout}`)
    // Nothing is lost by fitting: every value of the full table is still there.
    for (const word of ['ReporterAdded', 'TopicAdded', 'Granted', 'Joined', 'Banned', 'subscribe', 'publish', 'plant/valve', 'office/lights', 'not-member', 'installer']) assert.match(narrow.stdout, new RegExp(word.replace('/', '\\/')))
    assert.equal(width(wide.stdout), width(piped.stdout), '--wide prints the full table on a terminal')
  })

  test('--format json: the documented shape; --json prints the same report', async () => {
    const r = await flytrap(['audit', 'report', '--from', from, '--format', 'json'])
    assert.equal(r.code, 0, r.stderr)
    const rep = r.json<AuditReportResult>()
    assert.equal(rep.version, 1)
    assert.deepEqual(
      rep.rows.filter((x) => x.source === 'chain').map((x) => x.event),
      ['AdminChanged', 'ReporterAdded', 'TopicAdded', 'TopicAdded', 'Granted', 'Granted', 'Joined', 'Banned'],
    )
    assert.deepEqual(
      rep.rows.filter((x) => x.source === 'journal').map((x) => [x.event, x.proven]),
      [
        ['subscribe', false],
        ['publish', false],
      ],
    )
    const j = await flytrap(['audit', 'report', '--from', from, '--json'])
    assert.equal(j.code, 0, j.stderr)
    const viaJson = j.json<AuditReportResult>()
    assert.deepEqual(viaJson.rows, rep.rows)
    assert.equal(viaJson.out, null)
  })

  test('--topic and --client narrow the rows', async () => {
    const t = (await flytrap(['audit', 'report', '--from', from, '--topic', 'plant/valve', '--json'])).json<AuditReportResult>()
    assert.ok(t.rows.length > 0)
    assert.ok(t.rows.every((x) => x.topic === 'plant/valve'))
    assert.deepEqual(
      t.rows.map((x) => x.event),
      ['TopicAdded', 'Granted', 'Joined', 'subscribe'],
    )
    const c = (await flytrap(['audit', 'report', '--from', from, '--client', DEVICE_ADDR.toLowerCase(), '--json'])).json<AuditReportResult>()
    assert.deepEqual(
      c.rows.map((x) => x.event),
      ['Joined', 'Banned', 'subscribe', 'publish'],
    )
    assert.ok(c.rows.every((x) => x.client === DEVICE_ADDR))
  })

  test('--format csv --out: RFC 4180 file a spreadsheet opens', async () => {
    const out = join(cwd, 'reports', 'plant.csv')
    const r = await flytrap(['audit', 'report', '--from', from, '--topic', 'plant/valve', '--format', 'csv', '--out', out])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /4 rows written to .*plant\.csv/)
    const csv = readFileSync(out, 'utf8')
    const lines = csv.split('\r\n')
    assert.equal(lines[0], 'time,block,source,event,topic,client,actor,reason,detail,txHash,proven,verified,claimed,grantKind,grantRule,grantTx,grantBy,grantAt,grantUntil,grantReason,seq')
    assert.equal(lines.length, 4 + 2)
    assert.ok(lines[1]!.includes(',"ticket 7, ""urgent""",'), lines[1])
    const args = ['audit', 'report', '--from', from, '--client', DEVICE_ADDR, '--format', 'csv']
    const toStdout = await flytrap(args)
    assert.equal(toStdout.stdout.split('\r\n').length, 4 + 2)
    // The same bytes from the binary (written with process.stdout.write, not oclif's log).
    const viaBinary = await runCli(args, { cwd, env: { FLYTRAP_RPC: anvil.rpcUrl, FLYTRAP_HOME: undefined, FLYTRAP_DATA_DIR: undefined } })
    assert.equal(viaBinary.code, 0, viaBinary.stderr)
    assert.equal(viaBinary.stdout, toStdout.stdout)
  })

  test('user errors: a bad date (exit 2), a --data-dir without a journal (exit 3)', async () => {
    const bad = await flytrap(['audit', 'report', '--from', 'last tuesday'])
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /not a date/)
    const none = await flytrap(['audit', 'report', '--from', from, '--data-dir', join(cwd, 'nowhere')])
    assert.equal(none.code, 3, none.stderr)
    assert.match(none.stderr, /no journal/)
  })
})
