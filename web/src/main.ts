/** FlyTrap audit UI: hash-routed pages over the read-only /api. */
import './style.css'
import { h, type Child } from './dom.js'
import { checkPage } from './check.js'
import { get, type Status } from './api.js'
import { setExplorer } from './format.js'
import { anchorsPage, clientPage, overview, reportPage, topicPage, type PageContext } from './pages.js'

const main = document.getElementById('main') as HTMLElement
let controller: AbortController | null = null
let first = true

function route(): void {
  controller?.abort()
  controller = new AbortController()
  const raw = location.hash.replace(/^#\/?/, '')
  const qAt = raw.indexOf('?')
  const path = qAt >= 0 ? raw.slice(0, qAt) : raw
  const params = new URLSearchParams(qAt >= 0 ? raw.slice(qAt + 1) : '')
  const [page = '', ...rest] = path.split('/')
  const arg = rest.join('/')

  main.replaceChildren()
  let h1: HTMLElement | null = null
  const ctx: PageContext = {
    main,
    params,
    signal: controller.signal,
    heading(title: string, kicker?: Child) {
      document.title = `${title} · FlyTrap audit`
      h1 = h('h1', { tabindex: -1 }, kicker ?? null, kicker ? ' ' : null, kicker ? title.replace(/^\S+\s/, '') : title)
      return h1
    },
  }
  let nav = page || 'overview'
  try {
    if (page === '' || page === 'overview') overview(ctx)
    else if (page === 'topic' && arg) topicPage(ctx, decodeURIComponent(arg))
    else if (page === 'client' && arg) clientPage(ctx, decodeURIComponent(arg))
    else if (page === 'report') reportPage(ctx)
    else if (page === 'anchors') anchorsPage(ctx)
    else if (page === 'check') checkPage(ctx)
    else {
      nav = ''
      main.append(ctx.heading('Page not found'), h('p', null, 'There is no such page. ', h('a', { href: '#/' }, 'Go to the overview'), '.'))
    }
  } catch (err) {
    main.append(h('div', { class: 'error', role: 'alert' }, (err as Error).message))
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-route]')) {
    if (a.dataset.route === nav) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  // Move focus to the new page's heading so keyboard and screen-reader users land on it (not on first load).
  if (!first) (h1 as HTMLElement | null)?.focus()
  first = false
}

document.getElementById('find-client')?.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const input = document.getElementById('find-address') as HTMLInputElement
  const a = input.value.trim()
  if (a) location.hash = `#/client/${a}`
})
document.getElementById('skip')?.addEventListener('click', (ev) => {
  ev.preventDefault()
  main.focus()
})
window.addEventListener('hashchange', route)
// The explorer links need the server's settings: the first page is drawn once they are known (or unavailable).
void get<Status>('status').then(
  (st) => setExplorer(st.explorer),
  () => undefined,
).finally(route)
