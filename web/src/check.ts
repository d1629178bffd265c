/**
 * The "Check a bundle" page (#/check): pick or drop an evidence bundle; it is checked here, in the browser, with
 * the chain reads going to this server's chain node through the read-only relay. Nothing is uploaded.
 */
import { utc } from './format.js'
import { h, section, table, type Child } from './dom.js'
import { get, type Status } from './api.js'
import { badge, errorBox, loading } from './ui.js'
import type { PageContext } from './pages.js'
import type { CheckResult } from './bundle-check.js'

/** The check's steps in plain words (unknown future steps show under their own name). */
const STEP_LABELS: Record<string, string> = {
  structure: 'The bundle is well formed and for this deployment',
  entries: 'Every journal entry matches its leaf and its Merkle path to the anchored root',
  completeness: 'Nothing in scope was left out (scope index)',
  redactions: 'Every redacted entry is covered by its erasure record',
  signature: 'The bundle is signed by its reporter',
  deployment: 'The deployment (contract and its block) is on chain',
  anchors: 'Every anchor is on chain, from this contract, by a reporter registered then',
  policy: 'The grants and other policy events cited are on chain, none left out',
  summaries: 'The period summaries are on chain, none left out',
}

const STATUS: Record<string, [string, 'ok' | 'bad' | 'warn']> = {
  ok: ['ok', 'ok'],
  failed: ['failed', 'bad'],
  'not-checked': ['not checked', 'warn'],
}

export function checkPage(ctx: PageContext): void {
  const { main, signal } = ctx
  const out = h('div', { id: 'check-result', role: 'status', 'aria-live': 'polite' })
  const input = h('input', { id: 'bundle-file', type: 'file', accept: '.json,application/json', 'aria-describedby': 'bundle-hint' })
  // Drag and drop for the mouse; the labelled file input below is the way for everyone else.
  const zone = h(
    'div',
    { class: 'dropzone', onclick: () => input.click() },
    h('strong', null, 'Drop a bundle file here'),
    h('span', { class: 'muted' }, ' or choose one below'),
  )
  main.append(
    ctx.heading('Check a bundle'),
    h(
      'p',
      { class: 'lede' },
      'Checks an evidence bundle (from ',
      h('code', null, 'flytrap audit export'),
      ' or a “Download evidence bundle” link) the way ',
      h('code', null, 'flytrap audit check'),
      ' does: every entry, proof and signature here in your browser, every anchor and policy event against this server’s chain node. The bundle is never uploaded; only chain reads go to the server.',
    ),
    section(
      'Bundle',
      zone,
      h('div', { class: 'field' }, h('label', { for: 'bundle-file' }, 'Evidence bundle (JSON file)'), input, h('small', { id: 'bundle-hint' }, 'The file stays on this computer.')),
    ),
    out,
  )

  const status = get<Status>('status', {}, signal)
  const run = async (file: File | undefined) => {
    if (!file) return
    out.replaceChildren(loading(`and checking ${file.name}`))
    let bundle: unknown
    try {
      bundle = JSON.parse(await file.text())
    } catch (err) {
      out.replaceChildren(h('div', { class: 'error', role: 'alert' }, h('strong', null, 'Not a bundle'), h('p', null, `${file.name} is not a JSON file (${(err as Error).message}).`)))
      return
    }
    try {
      const st = await status
      const { checkInBrowser } = await import('./bundle-check.js')
      const result = await checkInBrowser(bundle, { chainId: st.chainId, contract: st.contract })
      if (signal.aborted) return
      out.replaceChildren(render(file.name, result, st))
    } catch (err) {
      if (signal.aborted) return
      out.replaceChildren(errorBox(err))
    }
  }
  input.addEventListener('change', () => void run(input.files?.[0]))
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault()
    zone.classList.add('over')
  })
  zone.addEventListener('dragleave', () => zone.classList.remove('over'))
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault()
    zone.classList.remove('over')
    void run(ev.dataTransfer?.files[0])
  })
}

function render(name: string, r: CheckResult, st: Status): HTMLElement {
  const verdict: Child = r.ok
    ? h('p', { class: 'verdict ok' }, badge('all checks passed', 'ok'), ` ${name} holds: every step below is ok against chain ${st.chainId} and contract ${st.contract}.`)
    : h('div', { class: 'error', role: 'alert' }, h('strong', null, `${name} does not hold`), r.firstFailure ? h('p', null, 'First failing record: ', h('strong', { class: 'first-failure' }, r.firstFailure.record), h('br'), plainReason(r.firstFailure)) : null)
  const scope = r.scope
    ? h('p', { class: 'muted' }, `Scope: ${scope_(r)}; ${r.scope.periods} period${r.scope.periods === 1 ? '' : 's'}; signed by ${r.signer ?? 'nobody'}; ${r.inScope.length} entries in scope, ${r.redacted.length} redacted.`)
    : null
  return section(
    'Result',
    verdict,
    scope,
    table(
      'Check steps',
      ['Step', 'Status', 'Records', 'Detail'],
      Object.entries(r.steps).map(([k, s]) => [STEP_LABELS[k] ?? k, badge(STATUS[s.status]?.[0] ?? s.status, STATUS[s.status]?.[1] ?? 'warn'), String(s.checked), s.detail || '—']),
    ),
    r.failures.length > 1 ? h('details', null, h('summary', null, `All ${r.failures.length} failures`), h('ul', null, r.failures.map((f) => h('li', null, f.message)))) : null,
    r.warnings.length ? [h('h3', null, 'Notes'), h('ul', { class: 'muted' }, r.warnings.map((w) => h('li', null, w)))] : null,
  )
}

function scope_(r: CheckResult): string {
  const s = r.scope!
  // Shown in UTC with its zone, like every time in the UI (the bundle's ISO strings).
  const when = (t: string) => {
    const d = new Date(t)
    return Number.isNaN(d.getTime()) ? t : utc(d)
  }
  return `${when(s.from)} to ${when(s.to)}${s.topic ? `, topic ${s.topic}` : ''}${s.client ? `, client ${s.client}` : ''}`
}

/** The failure's message without the record name it repeats. */
function plainReason(f: { record: string; message: string }): string {
  return f.message.startsWith(`${f.record}: `) ? f.message.slice(f.record.length + 2) : f.message
}
