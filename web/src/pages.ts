import { frag, h, section, table, type Child } from './dom.js'
import { apiUrl, get, rowsOf, type ReportRow, type RowGrant, type Anchor, type AuditEvent, type Ban, type ClientDetail, type CountEntry, type Denied, type Query, type Report, type Sensitive, type Status, type Topic, type TopicDetail, type Traffic } from './api.js'
import { addr, blockLink, copyButton, short, duration, eth, expiry, hash, isAddress, reasonLabel, time, topicLink, txLink, yesNo } from './format.js'
import { COLOURS, barChart, columnChart, type ColumnBucket, type Series } from './charts.js'
import { badge, part } from './ui.js'

export interface PageContext {
  main: HTMLElement
  params: URLSearchParams
  signal: AbortSignal
  /** Sets the document title and returns the page's h1. */
  heading(title: string, sub?: Child): HTMLElement
}

const slot = () => h('div', { class: 'slot' })

// ------------------------------------------------------------------ shared tables

export function eventsTable(caption: string, events: AuditEvent[], opts: { hideTopic?: boolean; empty?: string } = {}): HTMLElement {
  const headers = ['Time', 'Event', ...(opts.hideTopic ? [] : ['Topic']), 'Client', 'By', 'Reason', 'Detail', 'Block / tx']
  return table(
    caption,
    headers,
    events.map((e) => [
      time(e.time),
      h('span', { class: `ev ev-${e.type.toLowerCase()}` }, e.type),
      ...(opts.hideTopic ? [] : [topicLink(e.topic)]),
      addr(e.client),
      addr(e.actor),
      e.reason ? h('q', null, e.reason) : '—',
      e.detail ? h('span', { class: 'detail' }, e.detail) : '—',
      blockTx(e.block, e.tx),
    ]),
    { empty: opts.empty ?? 'No events.', className: 'events' },
  )
}

/** A row's block (explorer link when configured) over its tx (shortened, copyable). */
function blockTx(block: number | null | undefined, tx: string | null | undefined): Child {
  if ((block === null || block === undefined) && !tx) return '—'
  return h('span', { class: 'bt' }, blockLink(block), txLink(tx))
}

/** Reporter topics for refusals that are not about one topic. */
export function refusalLabel(topic: string | undefined): string {
  if (topic === '$connect') return 'connection refused'
  if (topic === '$other') return 'other topics'
  return topic ? `topic ${topic}` : 'unspecified'
}

/** Per-topic counts of a denied summary, or per-member counts of a clear sensitive report. */
function counts(list: readonly CountEntry[] | undefined): Child {
  if (!list || list.length === 0) return '—'
  return h(
    'ul',
    { class: 'plain' },
    list.map((c) => h('li', null, 'client' in c ? addr(c.client) : c.topic.startsWith('$') ? refusalLabel(c.topic) : /^0x[0-9a-fA-F]{64}$/.test(c.topic) ? ['unregistered topic ', hash(c.topic, 'topic id')] : topicLink(c.topic), `: ${c.count}`)),
  )
}

const period = (from: string, to: string): Child => [time(from), ' – ', time(to)]

export function bansTable(bans: Ban[]): HTMLElement {
  return table(
    'Bans recorded by reporters',
    ['Recorded', 'Subject', 'Until', 'Reason', 'Reporter'],
    bans.map((b) => [time(b.time), b.client ? addr(b.client) : h('span', { title: b.subject }, 'IP ', hash(b.subject)), time(b.until), b.reason ? h('q', null, b.reason) : '—', addr(b.reporter)]),
    { empty: 'Nobody is banned.' },
  )
}

export function deniedTable(rows: Denied[]): HTMLElement {
  return table(
    'Denied-attempt summaries',
    ['Period', 'Total', 'By reason', 'Reporter'],
    rows.map((d) => [period(d.fromTime, d.toTime), String(d.total), counts(d.counts), addr(d.reporter)]),
    { empty: 'No refusals reported.' },
  )
}

/** Committed reports show counts and the members' root (who is in the journal, not on chain); clear ones list who. */
function sensitiveMembers(r: Sensitive): Child[] {
  if (r.form === 'clear') return [counts(r.publishers), counts(r.receivers)]
  const committed = () => h('span', { title: `members root ${r.membersRoot ?? ''}` }, badge('committed', 'info'))
  return [[`${r.publisherCount} (${r.published}) `, committed()], [`${r.receiverCount} (${r.received}) `, committed()]]
}

export function sensitiveTable(caption: string, rows: Sensitive[], empty: string): HTMLElement {
  return table(
    caption,
    ['Period', 'Publishers (messages)', 'Receivers (messages)', 'Reporter'],
    rows.map((r) => [period(r.fromTime, r.toTime), ...sensitiveMembers(r), addr(r.reporter)]),
    { empty },
  )
}

function historyNote(shown: number, total: number | undefined, reportHref: string): Child {
  if (total === undefined || total <= shown) return null
  return h('p', { class: 'muted' }, `Showing the latest ${shown} of ${total} events. `, h('a', { href: reportHref }, 'Build a report'), ' for all of them.')
}

function rightsCells(r: { publish: boolean; subscribe: boolean; pubExpiry: unknown; subExpiry: unknown }): Child[] {
  return [expiry(r.pubExpiry as never, r.publish), expiry(r.subExpiry as never, r.subscribe)]
}

function countries(c: Topic['countries']): string {
  const s = Array.isArray(c) ? c.join(', ') : c
  return s ? s : 'any'
}

/**
 * "Download evidence bundle" for what the page shows (GET /api/evidence), once /api/status says the server can
 * sign bundles; otherwise a note saying what the server needs. A bundle is for one topic or one client.
 */
export function evidenceLink(q: Query, signal: AbortSignal): HTMLElement {
  const out = h('span', { class: 'evidence' })
  if (q.topic && q.client) {
    out.append(h('span', { class: 'muted' }, 'An evidence bundle is for one topic or one client: clear one of them to download one.'))
    return out
  }
  void get<Status>('status', {}, signal).then(
    (st) => {
      if (signal.aborted) return
      if (st.evidence) {
        out.replaceChildren(
          h('a', { href: apiUrl('evidence', q), download: '', class: 'button' }, 'Download evidence bundle'),
          ' ',
          h('small', { class: 'muted' }, 'signed by the reporter; check it on the ', h('a', { href: '#/check' }, 'Check a bundle'), ' page or with ', h('code', null, 'flytrap audit check'), '.'),
        )
      } else out.replaceChildren(h('span', { class: 'muted' }, 'Evidence bundles need the server started with --data-dir and --key (the reporter key).'))
    },
    () => undefined,
  )
  return out
}

/** The grant behind an allowed access: kind, rule, who gave it, when, until when, the reason, the tx. */
export function grantCell(g: RowGrant | null | undefined): Child {
  if (!g) return '—'
  const kind = g.kind === 'join' ? 'joined (paid)' : g.kind === 'owner' ? 'owner' : 'granted'
  return h(
    'span',
    { class: 'grant' },
    badge(kind, 'ok'),
    ' ',
    g.rule !== undefined ? h('span', { class: 'mono' }, g.rule) : null,
    h('br'),
    'by ',
    addr(g.by),
    ' at ',
    time(g.at),
    h('br'),
    g.until ? ['until ', time(g.until)] : 'until revoked',
    g.reason ? [h('br'), h('q', null, g.reason)] : null,
    h('br'),
    'tx ',
    txLink(g.tx),
  )
}

/** What the proven column means, in plain words. */
export const PROVEN_LEGEND =
  'Proven: the server checked the journal entry’s Merkle proof against the root its period anchored on chain. Not proven: the proof does not check, or no anchor covers the entry yet. Chain rows (—) are on chain themselves. To check it yourself, download the evidence bundle and check it on the Check a bundle page or with flytrap audit check.'

function provenCell(p: boolean | null | undefined): Child {
  if (p === null || p === undefined) return h('span', { title: 'a chain event: on chain itself' }, '—')
  return p ? h('span', { title: 'its Merkle proof checks against the anchored root' }, badge('proven', 'ok')) : h('span', { title: 'no anchor covers it, or its proof does not check' }, badge('not proven', 'warn'))
}

// ------------------------------------------------------------------ overview

export function overview(ctx: PageContext): void {
  const { main, signal } = ctx
  const status = slot()
  const topics = slot()
  const activity = slot()
  const bans = slot()
  const denied = slot()
  const deniedRows = slot()
  const sensitive = slot()
  const recent = slot()
  type Range = 'all' | 'hour' | 'day'
  let range: Range = 'all'
  const ranges: [Range, string][] = [
    ['all', 'All time'],
    ['hour', 'Last 48 hours, hourly'],
    ['day', 'Last 30 days, daily'],
  ]

  const bucketPicker = h(
    'div',
    { class: 'toolbar', role: 'group', 'aria-label': 'Activity range' },
    ranges.map(([r, text]) =>
      h(
        'button',
        {
          type: 'button',
          'aria-pressed': String(r === range),
          onclick: (ev: Event) => {
            range = r
            for (const btn of bucketPicker.querySelectorAll('button')) btn.setAttribute('aria-pressed', String(btn === ev.currentTarget))
            void loadActivity()
          },
        },
        text,
      ),
    ),
  )

  main.append(
    ctx.heading('Overview'),
    section('Sync status', status),
    section('Topics', topics),
    section('Traffic over time', bucketPicker, activity),
    h('div', { class: 'two' }, section('Refusals by reason', denied, deniedRows), section('Sensitive access per topic', sensitive)),
    section('Bans', bans),
    section('Recent changes', recent, h('p', null, h('a', { href: '#/report' }, 'Build a report'), ' for any range, topic or client.')),
  )

  void part(status, 'status', () => get<Status>('status', {}, signal), (st) =>
    h(
      'dl',
      { class: 'stats' },
      stat('Sync', st.synced ? badge('in sync', 'ok') : badge(st.lastError ? 'sync failing' : 'catching up', st.lastError ? 'bad' : 'warn'), st.lastError ? h('div', { class: 'muted small' }, st.lastError) : null),
      stat('Block', String(st.block)),
      stat('Last sync', time(st.lastSyncAt)),
      stat('Chain', String(st.chainId)),
      stat('Contract', fullHex(st.contract, 'contract address')),
      stat('Topics', String(st.topics)),
      stat('Members', String(st.members)),
      stat('Events', String(st.events)),
      stat('Bans', String(st.bans)),
      stat('Anchors', h('a', { href: '#/anchors' }, String(st.anchors))),
    ),
  signal)

  void part(topics, 'topics', () => get<{ topics: Topic[] }>('topics', {}, signal), ({ topics: list }) =>
    table(
      'Registered topics',
      ['Topic', 'Owner', 'Publish fee', 'Subscribe fee', 'Period', 'Sensitive', 'Open', 'Countries', 'Members'],
      list.map((t) => [topicLink(t.name), addr(t.owner), eth(t.pubFeeEth), eth(t.subFeeEth), duration(t.periodSeconds), t.sensitive ? badge('sensitive', 'warn') : 'no', yesNo(t.open), countries(t.countries), String(t.members)]),
      { empty: 'No topics are registered yet.' },
    ),
  signal)

  const loadActivity = () => {
    // "All time" lets the server choose the range (first event to now) and the bucket size.
    const now = Date.now()
    const q: Query = range === 'all' ? {} : { bucket: range, from: new Date(now - (range === 'hour' ? 48 * 3600e3 : 30 * 86400e3)).toISOString(), to: new Date(now + 60e3).toISOString() }
    return part(activity, 'traffic', () => get<Traffic>('traffic', q, signal), (t) => {
      trafficSlots(t)
      return trafficCharts(t)
    }, signal)
  }
  // The totals (refusals by reason, sensitive access per topic) follow the chosen range.
  const trafficSlots = (t: Traffic) => {
    denied.replaceChildren(frag(refusalsPart(t)))
    sensitive.replaceChildren(frag(sensitivePart(t)))
  }
  void loadActivity()

  void part(deniedRows, 'refusal summaries', () => get<unknown>('denied', {}, signal), (body) => h('details', null, h('summary', null, 'Denied-attempt summaries on chain'), deniedTable(rowsOf(body) as unknown as Denied[])), signal)

  void part(bans, 'bans', () => get<unknown>('bans', {}, signal), (body) => bansTable(rowsOf(body) as unknown as Ban[]), signal)

  void part(recent, 'recent changes', () => get<{ events: AuditEvent[] }>('events', { limit: 15 }, signal), ({ events }) => eventsTable('Latest events', events), signal)
}

/** A member's standing: a revoked member reads "revoked", not "no / no". */
function memberStatus(st: 'active' | 'expired' | 'revoked'): HTMLElement {
  return st === 'active' ? badge('active', 'ok') : st === 'revoked' ? badge('revoked', 'bad') : badge('expired', 'warn')
}

/** A value shown whole on one line where there is room (shortened on a phone), with a copy button. */
function fullHex(value: string, what: string): HTMLElement {
  return h('span', { class: 'fullhex' }, h('span', { class: 'mono full', title: value }, value), h('span', { class: 'mono brief', title: value, 'aria-hidden': 'true' }, short(value)), copyButton(value, what))
}

/** The client's refused attempts, from the server's journal. */
function clientRefusals(d: ClientDetail): Child {
  if (d.refusals === null) return h('p', { class: 'muted' }, 'The server has no journal (start it with --data-dir): refused attempts are only in the proxy’s journal, not on chain.')
  return [
    table(
      `Refused attempts of ${d.address}`,
      ['Time', 'Attempt', 'Topic', 'Reason', 'Client id', 'Count'],
      d.refusals.map((r) => [time(r.time), r.kind, r.topic ? topicLink(r.topic) : '—', [reasonLabel(r.reason), r.unverified ? [' ', h('span', { title: 'the credential did not verify: the address was only claimed' }, badge('unverified', 'bad'))] : null], r.clientId ? h('span', { class: 'mono' }, r.clientId) : '—', String(r.count)]),
      { empty: 'No refused attempts in the journal.' },
    ),
    d.refusalsTotal > d.refusals.length ? h('p', { class: 'muted' }, `Showing the latest ${d.refusals.length} of ${d.refusalsTotal}.`) : null,
  ]
}

function stat(k: string, ...v: Child[]): HTMLElement {
  return h('div', null, h('dt', null, k), h('dd', null, ...v))
}

/** The refusal reasons as chart series: the four most frequent in colour, the rest summed as "other reasons". */
function reasonSeries(t: Traffic): { keys: string[][]; series: Series[] } {
  const ranked = Object.entries(t.refusalsByReason).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([k]) => k)
  const top = ranked.length > COLOURS.reasons.length ? ranked.slice(0, COLOURS.reasons.length - 1) : ranked
  const rest = ranked.slice(top.length)
  const keys = [...top.map((k) => [k]), ...(rest.length ? [rest] : [])]
  const series = [...top.map((k, i) => ({ label: reasonLabel(k), colour: COLOURS.reasons[i]! })), ...(rest.length ? [{ label: `other reasons (${rest.map(reasonLabel).join(', ')})`, colour: COLOURS.other }] : [])]
  return { keys, series }
}

function sourceNote(t: Traffic): HTMLElement {
  return h(
    'p',
    { class: 'muted small source' },
    t.source === 'journal'
      ? 'From the proxy’s journal: every decision, with the proxy’s reason. Times in UTC.'
      : 'From the chain’s period summaries (the server has no journal: start it with --data-dir for accesses and reasons). The chain counts refusals per topic only, so they show as refused connections and refused topic access. Times in UTC.',
  )
}

function trafficCharts(t: Traffic): Child {
  const { keys, series } = reasonSeries(t)
  const accessSeries: Series[] = t.source === 'journal' ? [{ label: 'accesses allowed', colour: COLOURS.accesses }, { label: 'sensitive deliveries', colour: COLOURS.sensitive }] : [{ label: 'sensitive deliveries', colour: COLOURS.sensitive }]
  const accessBuckets: ColumnBucket[] = t.buckets.map((b) => ({ start: b.start, values: t.source === 'journal' ? [b.accesses ?? 0, b.sensitive] : [b.sensitive] }))
  const refusalBuckets: ColumnBucket[] = t.buckets.map((b) => ({ start: b.start, values: keys.map((ks) => ks.reduce((a, k) => a + (b.refusals[k] ?? 0), 0)) }))
  return [
    sourceNote(t),
    h(
      'div',
      { class: 'two' },
      h('div', null, h('h3', null, t.source === 'journal' ? 'Accesses and sensitive deliveries' : 'Sensitive deliveries'), columnChart({ id: 'traffic-access', title: `Accesses per ${t.bucket}`, buckets: accessBuckets, series: accessSeries, bucket: t.bucket, stacked: false, empty: 'No accesses in this range.' })),
      h('div', null, h('h3', null, 'Refusals over time, by reason'), columnChart({ id: 'traffic-refusals', title: `Refusals per ${t.bucket}`, buckets: refusalBuckets, series, bucket: t.bucket, stacked: true, empty: 'No refusals in this range.' })),
    ),
  ]
}

/** A refused topic as people read it: a name, "connection (CONNECT)", or an unregistered topic's id. */
function refusedTopicLabel(r: Traffic['refusedTopics'][number]): Child {
  if (r.topic === '$connect') return 'connections (CONNECT)'
  if (r.topic === '$other') return 'other topics (beyond the summary’s limit)'
  if (!r.registered && /^0x[0-9a-fA-F]{64}$/.test(r.topic)) return h('span', null, 'an unregistered topic, id ', hash(r.topic, 'topic id'))
  if (!r.registered) return h('span', null, h('span', { class: 'mono' }, r.topic), ' ', h('span', { class: 'muted small' }, '(not registered)'))
  return r.topic.startsWith('$') ? r.topic : topicLink(r.topic)
}

function refusalsPart(t: Traffic): Child {
  const { keys, series } = reasonSeries(t)
  const bars = keys.map((ks, i) => {
    const value = ks.reduce((a, k) => a + (t.refusalsByReason[k] ?? 0), 0)
    const text = series[i]!.label
    return { label: text, text, value, colour: series[i]!.colour }
  })
  return [
    barChart(bars, 'Refused attempts by reason'),
    t.refusedTopics.length
      ? table(
          'Refused attempts by topic',
          ['Refused on', 'Count'],
          t.refusedTopics.map((r) => [refusedTopicLabel(r), String(r.count)]),
        )
      : null,
  ]
}

function sensitivePart(t: Traffic): Child {
  return [
    table(
      'Sensitive access per topic',
      ['Topic', 'Publishes', 'Publishers', 'Deliveries', 'Receivers'],
      t.sensitiveByTopic.map((x) => [topicLink(x.topic), String(x.published), String(x.publishers), String(x.delivered), String(x.receivers)]),
      { empty: 'No access to sensitive topics in this range.' },
    ),
    h('p', { class: 'muted small' }, t.source === 'journal' ? 'Distinct addresses from the journal.' : 'From the reporters’ sensitive-topic reports; publishers and receivers are summed per period.'),
  ]
}
// ------------------------------------------------------------------ topic

export function topicPage(ctx: PageContext, name: string): void {
  const { main, signal } = ctx
  const body = slot()
  main.append(ctx.heading(`Topic ${name}`, h('span', { class: 'kicker' }, 'Topic')), body)
  void part(body, `topic ${name}`, () => get<TopicDetail>(`topics/${encodeURIComponent(name)}`, {}, signal), (d) => {
    const t = d.topic
    if (!t) {
      return [
        h('div', { class: 'error', role: 'status' }, 'This topic has been removed. Its history remains below.'),
        section('Change history', eventsTable(`History of ${name}`, d.history, { hideTopic: true, empty: 'No changes recorded.' })),
        h('p', null, h('a', { href: `#/report?topic=${encodeURIComponent(name)}` }, `Report on ${name}`)),
      ]
    }
    return [
      section(
        'Policy',
        h(
          'dl',
          { class: 'stats' },
          stat('Owner', addr(t.owner)),
          stat('Publish fee', eth(t.pubFeeEth)),
          stat('Subscribe fee', eth(t.subFeeEth)),
          stat('Period', duration(t.periodSeconds)),
          stat('Sensitive', t.sensitive ? badge('sensitive', 'warn') : 'no'),
          stat('Open to anyone who pays', yesNo(t.open)),
          stat('Countries', countries(t.countries)),
          stat('Topic id', hash(t.id)),
        ),
      ),
      section(
        'Members',
        table(
          `Members of ${t.name}`,
          ['Client', 'Status', 'Publish', 'Subscribe'],
          d.members.map((m) => [addr(m.client), memberStatus(m.status), ...rightsCells(m)]),
          { empty: 'No members.' },
        ),
      ),
      section(
        'Change history',
        eventsTable(`History of ${t.name}`, d.history, { hideTopic: true, empty: 'No changes recorded.' }),
        historyNote(d.history.length, d.historyTotal, `#/report?topic=${encodeURIComponent(t.name)}`),
      ),
      section('Sensitive reports', sensitiveTable(`Sensitive reports for ${t.name}`, d.sensitiveReports ?? [], t.sensitive ? 'No reports yet.' : 'This topic is not marked sensitive.')),
      h('p', { class: 'downloads' }, h('a', { href: `#/report?topic=${encodeURIComponent(t.name)}` }, `Report on ${t.name}`), ' ', evidenceLink({ topic: t.name }, signal)),
    ]
  }, signal)
}

// ------------------------------------------------------------------ client

export function clientPage(ctx: PageContext, address: string): void {
  const { main, signal } = ctx
  const body = slot()
  main.append(ctx.heading(`Client ${address}`, h('span', { class: 'kicker' }, 'Client')), body)
  void part(body, `client ${address}`, () => get<ClientDetail>(`clients/${encodeURIComponent(address)}`, {}, signal), (d) => [
    section('Rights', table(`Rights of ${d.address}`, ['Topic', 'Status', 'Publish', 'Subscribe'], d.rights.map((r) => [topicLink(r.topic), memberStatus(r.status), ...rightsCells(r)]), { empty: 'This client holds no rights.' })),
    section('Refused attempts', clientRefusals(d)),
    section(
      'History',
      eventsTable(`History of ${d.address}`, d.history, { empty: 'Nothing recorded for this client.' }),
      historyNote(d.history.length, d.historyTotal, `#/report?client=${encodeURIComponent(d.address)}`),
    ),
    h('p', { class: 'downloads' }, h('a', { href: `#/report?client=${encodeURIComponent(d.address)}` }, 'Report on this client'), ' ', evidenceLink({ client: d.address }, signal)),
  ], signal)
}

// ------------------------------------------------------------------ anchors

export function anchorsPage(ctx: PageContext): void {
  const { main, signal } = ctx
  const body = slot()
  main.append(ctx.heading('Anchors'), h('p', { class: 'lede' }, 'Merkle roots of the proxy journal, recorded on chain by registered reporters. The status says whether the root matches the journal the server can see.'), body)
  void part(body, 'anchors', () => get<{ anchors: Anchor[] }>('anchors', {}, signal), ({ anchors }) =>
    table(
      'Anchored journal roots',
      ['Period', 'Entries', 'Root', 'Block', 'Tx', 'Reporter', 'Status'],
      anchors.map((a) => [period(a.fromTime, a.toTime), a.count ? `${a.count} (seq ${a.firstSeq}–${a.firstSeq + a.count - 1})` : '0 (empty period)', hash(a.root, 'Merkle root'), blockLink(a.block), txLink(a.tx), addr(a.reporter), anchorStatus(a.status)]),
      { empty: 'No anchors recorded yet.' },
    ),
  signal)
}

function anchorStatus(st: string): HTMLElement {
  const s = String(st ?? 'unknown').toLowerCase()
  const kind = /^(verified|ok|match|matches|valid)/.test(s) ? 'ok' : /(mismatch|invalid|fail|bad|tamper)/.test(s) ? 'bad' : 'warn'
  return badge(st ?? 'unknown', kind)
}

// ------------------------------------------------------------------ report builder

/** 'YYYY-MM-DDTHH:MM' in UTC, for <input type="datetime-local"> (the form is in UTC, as every time shown). */
export function localInput(d: Date): string {
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16)
}
/** The form's UTC 'YYYY-MM-DDTHH:MM' as an instant. */
const fromInput = (v: string) => new Date(`${v}:00Z`)

export function reportPage(ctx: PageContext): void {
  const { main, params, signal } = ctx
  const result = slot()
  const now = new Date()
  const fromIso = params.get('from') ?? new Date(now.getTime() - 7 * 86400e3).toISOString()
  const toIso = params.get('to') ?? ''
  const field = (id: string, text: string, input: HTMLElement, hint?: string) =>
    h('div', { class: 'field' }, h('label', { for: id }, text), input, hint ? h('small', { id: `${id}-hint` }, hint) : null)
  const topics = h('datalist', { id: 'topic-options' })
  const form = h(
    'form',
    { class: 'report-form', 'aria-label': 'Report filters' },
    field('r-from', 'From (UTC, inclusive)', h('input', { id: 'r-from', name: 'from', type: 'datetime-local', required: true, value: localInput(new Date(fromIso)) })),
    field('r-to', 'To (UTC, exclusive)', h('input', { id: 'r-to', name: 'to', type: 'datetime-local', value: toIso ? localInput(new Date(toIso)) : '', 'aria-describedby': 'r-to-hint' }), 'Empty means now.'),
    field('r-topic', 'Topic', h('input', { id: 'r-topic', name: 'topic', type: 'text', list: 'topic-options', value: params.get('topic') ?? '', 'aria-describedby': 'r-topic-hint' }), 'A name or filter; empty for all.'),
    field('r-client', 'Client', h('input', { id: 'r-client', name: 'client', type: 'text', spellcheck: 'false', pattern: '\\s*0x[0-9a-fA-F]{40}\\s*', value: params.get('client') ?? '', 'aria-describedby': 'r-client-hint' }), 'An address; empty for all.'),
    topics,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Build report')),
  )
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const fd = new FormData(form)
    const q = new URLSearchParams()
    const from = String(fd.get('from') ?? '')
    const to = String(fd.get('to') ?? '')
    if (from) q.set('from', fromInput(from).toISOString())
    if (to) q.set('to', fromInput(to).toISOString())
    for (const k of ['topic', 'client']) {
      const v = String(fd.get(k) ?? '').trim()
      if (v) q.set(k, v)
    }
    q.set('run', '1')
    const target = `#/report?${q}`
    if (location.hash === target) run()
    else location.hash = target
  })

  main.append(ctx.heading('Report'), h('p', { class: 'lede' }, 'Who did what, when and why: the same report as ', h('code', null, 'flytrap audit report'), '.'), section('Filters', form), h('div', { id: 'report-result' }, result))

  void get<{ topics: Topic[] }>('topics', {}, signal).then(
    ({ topics: list }) => topics.replaceChildren(...list.map((t) => h('option', { value: t.name }))),
    () => undefined,
  )

  const run = () => {
    const q: Query = { from: params.get('from') ?? fromIso, to: params.get('to'), topic: params.get('topic'), client: params.get('client') }
    const client = params.get('client')
    if (client && !isAddress(client)) {
      result.replaceChildren(h('div', { class: 'error', role: 'alert' }, 'The client must be a 0x address of 40 hex digits.'))
      return
    }
    void part(result, 'report', () => get<Report>('report', { ...q, format: 'json' }, signal), (r) => {
      const all = r.rows ?? []
      // Attempts whose credential did not verify only claim an address: listed apart, never as its own rows.
      const rows = all.filter((x) => x.verified !== false)
      const claims = all.filter((x) => x.verified === false)
      return section(
        'Result',
        h(
          'p',
          { class: 'downloads' },
          `${rows.length} row${rows.length === 1 ? '' : 's'}${claims.length ? `, ${claims.length} unverified attempt${claims.length === 1 ? '' : 's'}` : ''}. `,
          h('a', { href: apiUrl('report', { ...q, format: 'csv' }), download: 'flytrap-report.csv', class: 'button' }, 'Download CSV'),
          ' ',
          h('a', { href: apiUrl('report', { ...q, format: 'json' }), download: 'flytrap-report.json', class: 'button' }, 'Download JSON'),
          ' ',
          evidenceLink(q, signal),
        ),
        table(
          'Report rows',
          ['Time', 'Event / source', 'Topic', 'Client', 'By', 'Reason', 'Grant in force', 'Detail', 'Block / tx'],
          // Whether a journal row is proven is told under its source (chain rows are on chain themselves).
          rows.map((x) => [time(x.time), h('span', { class: 'ev' }, x.event, h('span', { class: 'src' }, x.source === 'journal' ? ['journal ', provenCell(x.proven)] : 'chain')), topicLink(x.topic), addr(x.client), addr(x.actor), x.reason ? h('q', null, x.reason) : '—', grantCell(x.grant), x.detail ? h('span', { class: 'detail' }, x.detail) : '—', blockTx(x.block, x.txHash)]),
          { empty: 'No rows in this range.', className: 'events' },
        ),
        h('p', { class: 'muted small', id: 'proven-legend' }, PROVEN_LEGEND),
        claims.length ? unverifiedTable(claims) : null,
      )
    }, signal)
  }
  if (params.get('run')) run()
}

/** Refused attempts whose credential did not verify: the address is only claimed, so it is not theirs. */
function unverifiedTable(rows: ReportRow[]): HTMLElement {
  return h(
    'section',
    { 'aria-labelledby': 's-unverified', class: 'unverified' },
    h('h3', { id: 's-unverified' }, 'Unverified attempts'),
    h('p', { class: 'muted' }, 'A credential claimed these addresses but did not verify: anyone can type an address, so these are not the activity of the address claimed.'),
    table(
      'Unverified attempts',
      ['Time', 'Event', 'Claimed address', 'Reason', 'Detail', 'Proven'],
      rows.map((x) => [time(x.time), x.event, [badge('unverified', 'bad'), ' ', addr(x.claimed)], x.reason ? h('q', null, x.reason) : '—', x.detail ? h('span', { class: 'detail' }, x.detail) : '—', provenCell(x.proven)]),
    ),
  )
}
