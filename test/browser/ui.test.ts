/**
 * The auditors' web UI in real headless Chromium (Debian's `chromium`, driven by playwright-core): a real anvil
 * with a scripted history, the built `flytrap audit serve` serving web/dist and the API, and a browser that
 * loads the overview, opens a topic and a client, builds a report (with the grant behind an access and an
 * unverified attempt marked apart) and downloads its CSV and its evidence bundle, then checks that bundle (and
 * a tampered copy) on the check page, in the browser, against the server's chain node. Screenshots of every
 * page are kept in test-artifacts/.
 *
 * Without /usr/bin/chromium the test fails on CI (CI set) and is skipped elsewhere.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { chainFixture, type ChainFixture } from '../helpers/chain.js'
import { BIN, tempCwd } from '../helpers/cli.js'
import { CSV_COLUMNS } from '../../src/lib/audit/report.js'
import { REVOKE_REASON, SENSITIVE, TOPIC, UNLISTED, scriptHistory, type History } from './history.js'
import { topicId } from '../../src/lib/chain/client.js'

const CHROMIUM = process.env.FLYTRAP_CHROMIUM ?? '/usr/bin/chromium'
const ON_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0'
const ROOT = new URL('../../', import.meta.url).pathname
const ARTIFACTS = join(ROOT, 'test-artifacts')
const DIST_INDEX = join(ROOT, 'web', 'dist', 'index.html')
const BUNDLE = join(ARTIFACTS, 'ui-evidence.json')
/** The flags this machine's Chromium needs (closed network, root, no GPU); playwright adds a fresh profile dir. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** `flytrap audit serve`, as a user runs it. */
const SERVE = [BIN, 'audit', 'serve']

interface Serve {
  child: ChildProcess
  url: string
  stop(): Promise<void>
}

function jsonLine(line: string): { url?: string; address?: string; port?: number } | null {
  try {
    const v: unknown = JSON.parse(line)
    return v && typeof v === 'object' ? (v as { url?: string; address?: string; port?: number }) : null
  } catch {
    return null
  }
}

/** Starts `flytrap audit serve --port 0 --json` and waits for the JSON line that says where it listens. */
function startServe(fx: ChainFixture, cwd: string, extra: string[] = []): Promise<Serve> {
  const child = spawn(process.execPath, [...SERVE, '--port', '0', '--json', ...extra], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', FLYTRAP_RPC: fx.rpcUrl, FLYTRAP_CONTRACT: fx.address },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill('SIGTERM')
    })
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer)
      void stop()
      reject(new Error(`flytrap audit serve ${why}\nstdout:\n${stdout}\nstderr:\n${stderr}`))
    }
    const timer = setTimeout(() => fail('printed no JSON line with its address within 60 s'), 60_000)
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString()
      for (const line of stdout.split('\n')) {
        const info = jsonLine(line)
        const url = info?.url ?? (info?.address?.startsWith('http') ? info.address : info?.port ? `http://127.0.0.1:${info.port}` : undefined)
        if (!url) continue
        clearTimeout(timer)
        resolve({ child, url: url.replace(/\/$/, ''), stop })
        return
      }
    })
    child.on('error', (err) => fail(`could not start: ${err.message}`))
    child.on('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`))
  })
}

/** 'YYYY-MM-DDTHH:MM' in UTC, what the report form's <input type="datetime-local"> takes (its times are UTC). */
function localInput(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16)
}

const UI_SHOTS = join(ARTIFACTS, 'ui')
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `ui-${name}.png`), fullPage: true })
/** A block explorer for the links (never loaded: the test checks the page requests nothing off the server). */
const EXPLORER = 'https://explorer.example'
const SIZES = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
] as const

/** What overflows on the page: the document wider than the window, and table cells whose content is cut. */
async function overflow(page: Page): Promise<{ doc: [number, number]; cells: string[]; regions: string[] }> {
  return page.evaluate(() => {
    const cells: string[] = []
    for (const c of document.querySelectorAll<HTMLElement>('main td, main th, main dd')) {
      if (c.closest('details:not([open])')) continue
      // A cell is clipped when its content is wider than the cell (it would be cut or spill into the next).
      if (c.scrollWidth > c.clientWidth + 1) cells.push(`${c.tagName} "${(c.textContent ?? '').trim().slice(0, 60)}" ${c.scrollWidth}>${c.clientWidth}`)
    }
    // Tables that must scroll sideways to show every column.
    const regions = [...document.querySelectorAll<HTMLElement>('main .table-wrap')].filter((w) => !w.closest('details:not([open])') && w.scrollWidth > w.clientWidth + 1).map((w) => `${w.getAttribute('aria-label')} ${w.scrollWidth}>${w.clientWidth}`)
    return { doc: [document.documentElement.scrollWidth, window.innerWidth] as [number, number], cells, regions }
  })
}

/**
 * Reloads the page at 1280×800 and 390×844, waits for it (ready), asserts nothing overflows the window and no
 * table cell is clipped (at 1280 px no table scrolls sideways either), and saves test-artifacts/ui/<name>-<width>.png.
 */
async function capture(page: Page, name: string, ready: () => Promise<unknown>): Promise<void> {
  mkdirSync(UI_SHOTS, { recursive: true })
  for (const size of SIZES) {
    await page.setViewportSize(size)
    await page.reload()
    await ready()
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'))
    const o = await overflow(page)
    await page.screenshot({ path: join(UI_SHOTS, `${name}-${size.width}.png`), fullPage: true })
    assert.ok(o.doc[0] <= o.doc[1], `${name} at ${size.width} px: the page is ${o.doc[0]} px wide in a ${o.doc[1]} px window`)
    assert.deepEqual(o.cells, [], `${name} at ${size.width} px: clipped cells`)
    if (size.width >= 1280) assert.deepEqual(o.regions, [], `${name} at ${size.width} px: tables that scroll sideways`)
  }
  await page.setViewportSize({ width: 1280, height: 900 })
}

if (!existsSync(CHROMIUM)) {
  const message = `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does this) to run the browser test`
  test('web UI in headless Chromium', { skip: ON_CI ? false : message }, () => assert.fail(message))
} else {
  describe('web UI in headless Chromium', { timeout: 180_000 }, () => {
    let fx: ChainFixture
    let history: History
    let serve: Serve
    let browser: Browser
    let page: Page
    const problems: string[] = []

    before(async () => {
      assert.ok(existsSync(DIST_INDEX), `${DIST_INDEX} is missing: build the UI with \`npm run build:web\` (npm run build does it)`)
      mkdirSync(ARTIFACTS, { recursive: true })
      fx = await chainFixture()
      const dataDir = tempCwd('flytrap-ui-data-')
      history = await scriptHistory(fx, dataDir)
      serve = await startServe(fx, tempCwd('flytrap-ui-'), ['--data-dir', dataDir, '--key', history.reporterKey, '--explorer', EXPLORER])
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
      const context = await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1280, height: 900 },
        timezoneId: Intl.DateTimeFormat().resolvedOptions().timeZone,
        locale: 'en-GB',
      })
      page = await context.newPage()
      page.setDefaultTimeout(20_000)
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console error: ${m.text()}`)
      })
      // Everything is bundled: the page must load nothing from anywhere but the server.
      page.on('request', (r) => {
        const u = r.url()
        if (!u.startsWith(serve.url) && !u.startsWith('data:')) problems.push(`request off the server: ${u}`)
      })
    })

    after(async () => {
      await browser?.close()
      await serve?.stop()
      await fx?.close()
    })

    test('overview shows sync status, the topics, charts and bans', async () => {
      await page.goto(`${serve.url}/`)
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
      const topics = page.getByRole('table', { name: 'Registered topics' })
      await topics.getByRole('link', { name: TOPIC, exact: true }).waitFor()
      await topics.getByRole('link', { name: SENSITIVE, exact: true }).waitFor()
      await page.getByText('in sync').waitFor()
      // Traffic from the journal: accesses, refusals by the proxy's reasons, sensitive deliveries.
      await page.getByText('From the proxy’s journal').waitFor()
      await page.locator('svg.chart[aria-labelledby="traffic-refusals"]').waitFor()
      const refusalsTitle = (await page.locator('#traffic-refusals').textContent()) ?? ''
      // Five reasons: three in their own colour, the two least frequent as "other reasons" (no colour repeats).
      assert.match(refusalsTitle, /other reasons \(/)
      for (const r of ['bad signature', 'banned', 'expired', 'no grant', 'unregistered topic']) assert.ok(refusalsTitle.includes(r), refusalsTitle)
      assert.match((await page.locator('#traffic-access').textContent()) ?? '', /accesses allowed [1-9]\d*, sensitive deliveries 1\b/)
      // No colour twice in a chart's legend.
      for (const id of ['traffic-access', 'traffic-refusals']) {
        const colours = await page.locator(`figure:has(#${id}) .legend .swatch`).evaluateAll((els) => els.map((e) => (e as HTMLElement).style.background))
        assert.equal(new Set(colours).size, colours.length, `${id}: ${colours.join(', ')}`)
        assert.ok(colours.length > 0)
      }
      await page.getByRole('img', { name: /Refused attempts by reason: .*bad signature/ }).waitFor()
      const refusedOn = page.getByRole('table', { name: 'Refused attempts by topic' })
      await refusedOn.getByText('connections (CONNECT)').waitFor()
      // The journal names the unregistered topic, marked as such (no link to a topic page that does not exist).
      await refusedOn.getByRole('row').filter({ hasText: UNLISTED }).getByText('(not registered)').waitFor()
      await refusedOn.getByRole('link', { name: TOPIC, exact: true }).waitFor()
      const sensitiveAccess = page.getByRole('table', { name: 'Sensitive access per topic' })
      // The owner's alarm through the proxy: one publish by one publisher, delivered once to one receiver.
      assert.deepEqual(await sensitiveAccess.getByRole('row').filter({ hasText: SENSITIVE }).locator('td').allTextContents(), [SENSITIVE, '1', '1', '1', '1'])
      // The chain's summary of the unregistered topic: its id, shortened, with the full value copyable.
      await page.getByText('Denied-attempt summaries on chain').click()
      const unlisted = page.getByRole('table', { name: 'Denied-attempt summaries' }).locator('li').filter({ hasText: 'unregistered topic' })
      assert.equal(await unlisted.locator('[data-copy]').getAttribute('data-copy'), topicId(UNLISTED))
      await page.getByRole('table', { name: 'Bans recorded by reporters' }).getByText('auth flood').first().waitFor()
      // Times in UTC, with the zone.
      assert.match((await page.getByRole('table', { name: 'Latest events' }).locator('time').first().textContent()) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\sUTC$/)
      await capture(page, 'overview', () => page.locator('svg.chart[aria-labelledby="traffic-refusals"]').waitFor())
    })

    test('a topic page shows its policy, a member, and a revoke with its reason', async () => {
      await page.getByRole('table', { name: 'Registered topics' }).getByRole('link', { name: TOPIC, exact: true }).click()
      await page.getByRole('heading', { level: 1, name: new RegExp(TOPIC) }).waitFor()
      const members = page.getByRole('table', { name: `Members of ${TOPIC}` })
      await members.getByRole('link', { name: `client ${history.member}` }).waitFor()
      const hist = page.getByRole('table', { name: `History of ${TOPIC}` })
      const revoke = hist.getByRole('row').filter({ hasText: 'Revoked' })
      await revoke.getByText(REVOKE_REASON).waitFor()
      await revoke.getByRole('link', { name: `client ${history.revoked}` }).waitFor()
      await revoke.getByRole('link', { name: `client ${history.owner}` }).waitFor() // the actor
      assert.equal(await page.getByText('DE, GB').count(), 1, 'the topic policy lists its countries')
      // The revoked member reads as revoked, not as "no / no".
      await members.getByRole('row').filter({ has: page.getByRole('link', { name: `client ${history.revoked}` }) }).getByText('revoked', { exact: true }).waitFor()
      await members.getByRole('row').filter({ has: page.getByRole('link', { name: `client ${history.member}` }) }).getByText('active', { exact: true }).waitFor()
      await capture(page, 'topic', () => members.waitFor())

      await page.goto(`${serve.url}/#/topic/${encodeURIComponent(SENSITIVE)}`)
      // A committed report: counts and "committed", nobody named.
      const sensitive = page.getByRole('table', { name: `Sensitive reports for ${SENSITIVE}` })
      await sensitive.getByText('committed').first().waitFor()
      assert.equal(await sensitive.getByRole('link', { name: `client ${history.member}` }).count(), 0, 'the committed report names nobody')
      await capture(page, 'topic-sensitive', () => sensitive.waitFor())
    })

    test('a client page shows its rights and history', async () => {
      await page.goto(`${serve.url}/#/topic/${encodeURIComponent(TOPIC)}`)
      await page.getByRole('table', { name: `Members of ${TOPIC}` }).getByRole('link', { name: `client ${history.member}` }).click()
      await page.getByRole('heading', { level: 1, name: new RegExp(history.member) }).waitFor()
      await page.getByRole('table', { name: `Rights of ${history.member}` }).getByRole('link', { name: TOPIC, exact: true }).waitFor()
      await page.getByRole('table', { name: `History of ${history.member}` }).getByText('maintenance contract').waitFor()
      // Its refused attempts from the journal: the impostor's claim, marked unverified.
      const refused = page.getByRole('table', { name: `Refused attempts of ${history.member}` })
      const claim = refused.getByRole('row').filter({ hasText: 'impostor' })
      await claim.getByText('bad signature').waitFor()
      await claim.getByText('unverified', { exact: true }).waitFor()
      await refused.getByRole('row').filter({ hasText: 'alarm-old' }).getByText(/^expired/).waitFor() // its expired credential, through the proxy
      await capture(page, 'client', () => refused.waitFor())
      await page.goto(`${serve.url}/#/client/${history.revoked}`)
      const revokedRefusals = page.getByRole('table', { name: `Refused attempts of ${history.revoked}` })
      await revokedRefusals.getByRole('row').filter({ hasText: 'contractor-1' }).getByText('banned', { exact: true }).waitFor() // refused at CONNECT by the proxy
      await page.getByRole('table', { name: `Rights of ${history.revoked}` }).getByText('revoked', { exact: true }).waitFor()
      await capture(page, 'client-revoked', () => revokedRefusals.waitFor())
    })

    test('the report builder builds a report for a range and a topic, and its CSV downloads', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Report' }).click()
      await page.getByRole('heading', { level: 1, name: 'Report' }).waitFor()
      await page.getByLabel('From (UTC, inclusive)').fill(localInput(history.startMs - 5 * 60_000))
      await page.getByLabel('To (UTC, exclusive)').fill(localInput(history.endMs + 5 * 60_000))
      await page.getByLabel('Topic').fill(TOPIC)
      await page.getByRole('button', { name: 'Build report' }).click()
      const rows = page.getByRole('table', { name: 'Report rows' })
      await rows.getByRole('row').filter({ hasText: 'Revoked' }).getByText(REVOKE_REASON).waitFor()
      assert.equal(await rows.getByRole('row').filter({ hasText: SENSITIVE }).count(), 0, 'only the chosen topic')
      await capture(page, 'report', () => rows.getByRole('row').filter({ hasText: 'Revoked' }).first().waitFor())

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()])
      const file = join(ARTIFACTS, 'ui-report.csv')
      await download.saveAs(file)
      const lines = readFileSync(file, 'utf8').split(/\r?\n/).filter(Boolean)
      assert.equal(lines[0], CSV_COLUMNS.join(','), 'the CSV header row')
      const revoked = lines.find((l) => l.includes(',Revoked,'))
      assert.ok(revoked, `a Revoked row in the CSV:\n${lines.join('\n')}`)
      assert.ok(revoked.includes(TOPIC) && revoked.includes(history.revoked) && revoked.includes(REVOKE_REASON), revoked)
      const json = page.getByRole('link', { name: 'Download JSON' })
      assert.match((await json.getAttribute('href')) ?? '', /format=json/)

      // The grant behind the member's publish: granted by the owner, its reason, the tx; the row is proven.
      const publish = rows.getByRole('row').filter({ has: page.locator('.grant') }).filter({ hasText: 'maintenance contract' })
      const grant = publish.locator('.grant')
      await grant.locator('.badge').getByText('granted', { exact: true }).waitFor()
      await grant.getByRole('link', { name: `client ${history.owner}` }).waitFor()
      await grant.getByText('until revoked').waitFor()
      await publish.getByText('proven', { exact: true }).waitFor()
      await page.locator('#proven-legend').getByText(/Merkle proof/).waitFor()
    })

    test('a client report keeps unverified attempts apart, and its evidence bundle downloads', async () => {
      await page.goto(`${serve.url}/#/report?from=${encodeURIComponent(new Date(history.startMs - 5 * 60_000).toISOString())}&to=${encodeURIComponent(new Date(history.endMs + 5 * 60_000).toISOString())}&client=${history.member}&run=1`)
      const rows = page.getByRole('table', { name: 'Report rows' })
      await rows.getByRole('row').filter({ hasText: 'valve-ctl' }).first().waitFor()
      const claims = page.getByRole('table', { name: 'Unverified attempts' })
      const claim = claims.getByRole('row').filter({ hasText: 'impostor' })
      await claim.getByText('unverified', { exact: true }).waitFor()
      await claim.getByRole('link', { name: `client ${history.member}` }).waitFor()
      assert.equal(await rows.getByRole('row').filter({ hasText: 'impostor' }).count(), 0, 'the claim is not among the address’s own rows')
      await capture(page, 'report-client', () => claims.waitFor())

      const link = page.getByRole('link', { name: 'Download evidence bundle' })
      const probe = await page.request.get(`${serve.url}/${(await link.getAttribute('href')) ?? ''}`)
      assert.equal(probe.status(), 200, await probe.text())
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
      assert.match(download.suggestedFilename(), /^flytrap-evidence-client-0x[0-9a-fA-F]{40}-.*\.json$/)
      await download.saveAs(BUNDLE)
      const bundle = JSON.parse(readFileSync(BUNDLE, 'utf8'))
      assert.equal(bundle.signer, history.reporter)
      assert.equal(bundle.scope.client.toLowerCase(), history.member.toLowerCase())
    })

    test('the check page checks the downloaded bundle in the browser (all ok) and names the first failing record of a tampered copy', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Check a bundle' }).click()
      const h1 = page.getByRole('heading', { level: 1, name: 'Check a bundle' })
      await h1.waitFor()
      assert.equal(await h1.evaluate((el) => el === document.activeElement), true, 'focus moves to the page heading')
      const rpcBodies: string[] = []
      const onRequest = (r: import('playwright-core').Request) => {
        if (r.method() !== 'GET') rpcBodies.push(`${r.url()} ${r.postData() ?? ''}`)
      }
      page.on('request', onRequest)
      await page.getByLabel('Evidence bundle (JSON file)').setInputFiles(BUNDLE)
      await page.getByText('all checks passed').waitFor()
      const steps = page.getByRole('table', { name: 'Check steps' })
      const statuses = await steps.locator('tbody tr td:nth-child(2)').allTextContents()
      assert.ok(statuses.length >= 9, statuses.join(','))
      assert.deepEqual([...new Set(statuses)], ['ok'], 'every step ok, chain steps included')
      await shot(page, 'check-ok')
      await capture(page, 'check', async () => {
        await page.getByLabel('Evidence bundle (JSON file)').setInputFiles(BUNDLE)
        await page.getByText('all checks passed').waitFor()
      })
      // Only chain reads left the page, to the relay; the bundle itself was never sent.
      const bundleText = readFileSync(BUNDLE, 'utf8')
      const salt = JSON.parse(bundleText).periods[0].entries.find((e: { salt?: string }) => e.salt).salt as string
      assert.ok(rpcBodies.length > 0 && rpcBodies.every((b) => b.startsWith(`${serve.url}/api/rpc `)), rpcBodies.join('\n'))
      assert.ok(!rpcBodies.some((b) => b.includes(salt.slice(2, 18))), 'no request carried the bundle')
      page.off('request', onRequest)

      const tampered = JSON.parse(bundleText)
      const victim = tampered.periods[0].entries.find((e: { entry?: { kind: string } }) => e.entry?.kind === 'publish')
      victim.entry.topic = 'plant/other'
      const file = join(ARTIFACTS, 'ui-evidence-tampered.json')
      writeFileSync(file, JSON.stringify(tampered))
      await page.getByLabel('Evidence bundle (JSON file)').setInputFiles(file)
      const alert = page.getByRole('alert').filter({ hasText: 'does not hold' })
      await alert.waitFor()
      assert.match((await alert.locator('.first-failure').textContent()) ?? '', new RegExp(`entry seq ${victim.seq}\\b`))
      assert.equal(await steps.locator('tbody tr').filter({ hasText: 'Merkle path' }).locator('td:nth-child(2)').textContent(), 'failed')
      await shot(page, 'check-tampered')
    })

    test('the anchors page shows each anchor with its verify status', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Anchors' }).click()
      const anchors = page.getByRole('table', { name: 'Anchored journal roots' })
      const row = anchors.getByRole('row').filter({ has: page.getByRole('link', { name: `client ${history.reporter}` }) })
      await row.getByText('verified', { exact: true }).waitFor() // its root matches the journal (--data-dir)
      assert.match((await row.locator('td:nth-child(2)').textContent()) ?? '', new RegExp(`^${history.journaled} \\(seq \\d+–\\d+\\)$`))
      await row.getByRole('link', { name: `client ${history.reporter}` }).waitFor()
      // Its tx and block, and the full root copyable.
      const anchored = (await (await page.request.get(`${serve.url}/api/anchors`)).json()).anchors[0]
      assert.equal(await row.locator('[data-copy]').first().getAttribute('data-copy'), anchored.root)
      assert.equal(await row.locator(`[data-copy="${anchored.tx}"]`).count(), 1, 'the anchor tx, copyable')
      assert.equal(await row.getByRole('link', { name: String(anchored.block), exact: true }).getAttribute('href'), `${EXPLORER}/block/${anchored.block}`)
      assert.equal(await row.getByRole('link', { name: `transaction hash ${anchored.tx}` }).getAttribute('href'), `${EXPLORER}/tx/${anchored.tx}`)
      await row.getByText(`seq ${anchored.firstSeq}–${anchored.firstSeq + anchored.count - 1}`, { exact: false }).waitFor()
      await capture(page, 'anchors', () => anchors.waitFor())
    })

    test('an unknown topic shows a clear error, and the page made no stray requests or errors', async () => {
      await page.goto(`${serve.url}/#/topic/${encodeURIComponent('no/such/topic')}`)
      await page.getByRole('alert').getByText('Not found').waitFor()
      await capture(page, 'not-found', () => page.getByRole('alert').getByText('Not found').waitFor())
      // The 404 of the API call above is expected; anything else is a problem.
      const unexpected = problems.filter((p) => !/404/.test(p))
      assert.deepEqual(unexpected, [])
    })
  })
}
