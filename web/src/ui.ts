/** Loading and error states shared by the pages. */
import { frag, h, type Child } from './dom.js'
import { ApiError } from './api.js'

export function loading(what: string): HTMLElement {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `Loading ${what}…`)
}

export function errorBox(err: unknown, retry?: () => void): HTMLElement {
  const e = err as Error
  const title = err instanceof ApiError && err.status === 404 ? 'Not found' : 'Could not load this'
  const code = err instanceof ApiError ? ` (${err.code})` : ''
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('strong', null, title),
    h('p', null, `${e?.message ?? String(err)}${code}`),
    retry ? h('button', { type: 'button', onclick: retry }, 'Try again') : null,
  )
}

/**
 * Fills `slot` with a loading line, then with what `render` builds from `fetch`'s result, or an error with a
 * retry button. Parts of a page load independently: one failing endpoint does not blank the page.
 */
export function part<T>(slot: HTMLElement, what: string, fetch: () => Promise<T>, render: (data: T) => Child, signal?: AbortSignal): Promise<void> {
  slot.setAttribute('aria-busy', 'true')
  slot.replaceChildren(loading(what))
  return fetch().then(
    (data) => {
      if (signal?.aborted) return
      slot.removeAttribute('aria-busy')
      slot.replaceChildren(frag(render(data)))
    },
    (err: unknown) => {
      if (signal?.aborted) return
      slot.removeAttribute('aria-busy')
      slot.replaceChildren(errorBox(err, () => void part(slot, what, fetch, render, signal)))
    },
  )
}

export function badge(text: string, kind: 'ok' | 'warn' | 'bad' | 'info' = 'info'): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text)
}
