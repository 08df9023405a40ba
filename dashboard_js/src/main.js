// The dashboard: one page, views chosen by the URL's hash, so every view (with its
// filters) is a link that can be shared or bookmarked:
//
//   #/                       overview: every platform and group the credential may read
//   #/signin                 sign-in
//   #/app/ID?tab=…&p=…       one platform;  #/group/ID?… one group of platforms
//       tab  summary | regions | devices | pages | resources | tracks | health
//       p    today | yesterday | 7d | 30d | month | lastmonth | custom (with from, to)
//       g    minute | hour | day | month (default: by the period's length)
//       prov a province's GB/T 2260 code (regions: its prefectures)
//   lang=en anywhere: English
//
// Every figure comes from /api/stats (or the registry's health endpoints); the exact
// query behind a block is kept in its data-query attribute, and each number's exact
// value in data-value, so tests/browser/test_dashboard.py can compare them.
import { ApiError, credential, getJSON, getOptional, stats, subjectParams } from './api.js'
import { LANGS, STRINGS } from './i18n.js'
import { GRANULARITIES, PERIODS, addDays, localParts, resolvePeriod } from './period.js'
import { barChart, lineChart, mapChart, sparkline } from './svg.js'

// ---- small DOM helpers ----------------------------------------------------------------

/** An element; text is always set as text (page URLs and names are hostile input). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : value)
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) el.append(child)
  return el
}

/** Replaces an element's children; absent ones (null: "not shown here") are left out. */
const fill = (el, ...children) => el.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false))

const app = () => document.getElementById('app')

// ---- language ---------------------------------------------------------------------------

let lang = 'zh'
const t = (key) => STRINGS[lang][key] ?? key

function setLang(next) {
  lang = LANGS.includes(next) ? next : 'zh'
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  document.title = t('title')
}

// ---- numbers --------------------------------------------------------------------------

const locale = () => (lang === 'zh' ? 'zh-CN' : 'en-US')
const fmtInt = (n) => (n === null || n === undefined ? '—' : Math.round(n).toLocaleString(locale()))
const fmtDec = (n, digits = 2) => (n === null || n === undefined ? '—' : Number(n).toLocaleString(locale(), { maximumFractionDigits: digits }))
const fmtPct = (r, digits = 1) => (r === null || r === undefined ? '—' : (100 * r).toFixed(digits) + '%')
function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—'
  const sec = Math.round(ms / 1000)
  const hours = Math.floor(sec / 3600)
  const mm = String(Math.floor((sec % 3600) / 60)).padStart(2, '0')
  const ss = String(sec % 60).padStart(2, '0')
  return hours ? `${hours}:${mm}:${ss}` : `${Math.floor(sec / 60)}:${ss}`
}
/** (now - before) / before, null when there was nothing before. */
const change = (now, before) => (before ? (now - before) / before : null)
function fmtChange(ratio) {
  if (ratio === null || ratio === undefined) return '—'
  const text = (ratio >= 0 ? '+' : '') + (100 * ratio).toFixed(1) + '%'
  return text
}
const changeClass = (ratio) => (ratio > 0 ? 'up' : ratio < 0 ? 'down' : '')

// ---- dates, in the collector's time zone --------------------------------------------------

let timezone = 'Asia/Shanghai' // replaced by the first answer's `timezone`
const nowParts = () => localParts(new Date(), timezone)

// ---- the route --------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/'
  const [path, query] = hash.split('?')
  const params = Object.fromEntries(new URLSearchParams(query || ''))
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  return { parts, params }
}

function link(parts, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== '' && v !== null)).toString()
  return '#/' + parts.map(encodeURIComponent).join('/') + (query ? '?' + query : '')
}

function go(parts, params) {
  location.hash = link(parts, params)
}

// ---- who is reading -------------------------------------------------------------------------

const session = { checked: false, role: null, apps: [], groups: null, health: null }

/** Who the credential (or none, on a loopback-only collector) is; false when it reads
 * nothing. Asks only what this reader may read, so no request fails on the way (and
 * nothing but real trouble shows in the console). */
async function identify() {
  let who
  try {
    who = await getJSON('/api/whoami')
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return false
    throw err
  }
  if (!who.role) return false
  session.role = who.role
  const [apps, groups, health] = await Promise.all([
    getJSON('/api/apps'),
    groupsOf(),
    who.role === 'admin' ? getJSON('/api/admin/health') : null
  ])
  session.apps = apps.apps
  session.groups = groups
  session.health = health
  session.checked = true
  return true
}

/** The groups this reader may read (GET /api/groups), when the collector has groups:
 * its API description says so, so an older collector is not asked (a 404 in the console). */
async function groupsOf() {
  const spec = await getJSON('/api/openapi.json')
  if (!spec.paths || !spec.paths['/api/groups']) return null
  const body = await getOptional('/api/groups')
  return body ? normaliseGroups(body) : null
}

/** /api/groups's answer as [{id, name}], whatever the list is wrapped in. */
function normaliseGroups(body) {
  const list = Array.isArray(body) ? body : body.groups || []
  return list.map((g) => (typeof g === 'string' ? { id: g, name: g } : { id: String(g.id), name: g.name || g.label || String(g.id) }))
}

// ---- layout -------------------------------------------------------------------------------

function header(route) {
  const other = lang === 'zh' ? 'en' : 'zh'
  const role = session.role ? t('signed_' + session.role) : ''
  return h('header', { class: 'top' },
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); document.getElementById('main').focus() } }, t('skip')),
    h('a', { class: 'brand', href: link([], { lang: langParam() }) }, t('title')),
    h('nav', { 'aria-label': t('overview') },
      role ? h('span', { class: 'role' }, role) : null,
      h('button', { type: 'button', id: 'lang', onclick: () => go(route.parts, { ...route.params, lang: other === 'zh' ? undefined : other }) }, t('lang_switch')),
      credential.get() ? h('button', { type: 'button', id: 'signout', onclick: signOut }, t('signout')) : null))
}

const langParam = () => (lang === 'zh' ? undefined : lang)

function signOut() {
  credential.clear()
  Object.assign(session, { checked: false, role: null, apps: [], groups: null, health: null })
  go(['signin'], { lang: langParam() })
}

function footer(withRegions) {
  return h('footer', null,
    h('span', null, 'edu-beacon ' + __VERSION__),
    withRegions ? h('span', { class: 'attribution' },
      h('a', { href: 'https://github.com/apache/echarts/tree/4.9.0/map', rel: 'noopener' }, t('attribution_map')), ' · ',
      h('a', { href: 'https://db-ip.com', rel: 'noopener' }, t('attribution_ip'))) : null)
}

function page(route, ...content) {
  const root = app()
  root.replaceChildren(header(route), h('main', { id: 'main', tabindex: '-1' }, ...content), footer(true))
}

function status(text, cls = 'status') {
  return h('p', { class: cls, role: 'status' }, text)
}

function errorBlock(err) {
  return h('p', { class: 'error', role: 'alert' }, `${t('error')}: ${err.message || err}`)
}

// ---- tables and CSV ---------------------------------------------------------------------------

/** columns: [{key, label, value(row) → raw, show(raw, row) → text|Node, num}] */
/** A table with a CSV export; numeric columns sort (largest first, again: smallest first)
 * with the button in their header. */
function dataTable(name, columns, rows, caption) {
  let shownRows = rows
  let sortedBy = null
  const cell = (row, c) => {
    const raw = c.value(row)
    const shown = c.show ? c.show(raw, row) : raw === null || raw === undefined ? '—' : String(raw)
    return h('td', { class: (c.num ? 'num ' : '') + (c.tone ? changeClass(raw) : ''), 'data-key': c.key, 'data-value': raw === null || raw === undefined ? '' : String(raw) }, shown)
  }
  const body = h('tbody')
  const renderBody = () => fill(body, ...(shownRows.length ? shownRows.map((row) => h('tr', null, columns.map((c) => cell(row, c))))
    : [h('tr', null, h('td', { colspan: columns.length }, t('no_data')))]))
  const sortBy = (c, th) => {
    const descending = !(sortedBy === c && th.getAttribute('aria-sort') === 'descending')
    const key = (row) => c.value(row) ?? -Infinity
    shownRows = [...rows].sort((a, b) => (descending ? key(b) - key(a) : key(a) - key(b)))
    sortedBy = c
    for (const other of th.parentNode.children) other.removeAttribute('aria-sort')
    th.setAttribute('aria-sort', descending ? 'descending' : 'ascending')
    renderBody()
  }
  const header = (c) => {
    const th = h('th', { scope: 'col', class: c.num ? 'num' : '' })
    if (c.num && rows.length > 1) th.append(h('button', { type: 'button', class: 'sort', 'data-sort': c.key, onclick: () => sortBy(c, th) }, c.label))
    else th.append(c.label)
    return th
  }
  const table = h('table', { 'data-table': name }, caption ? h('caption', null, caption) : null, h('thead', null, h('tr', null, columns.map(header))), body)
  renderBody()
  const download = h('button', { type: 'button', class: 'csv', 'data-csv': name, onclick: () => saveCsv(name, columns, shownRows) }, t('csv'))
  return h('div', { class: 'table-block' }, h('div', { class: 'table-tools' }, download), h('div', { class: 'scroll' }, table))
}

function csvCell(value) {
  let text = value === null || value === undefined ? '' : String(value)
  // A cell a spreadsheet would run as a formula (a referrer, a page title) is quoted as text.
  if (/^[=+\-@\t\r]/.test(text) && isNaN(Number(text))) text = "'" + text
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text
}

export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvCell(c.label)).join(',')]
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.value(row))).join(','))
  return '\ufeff' + lines.join('\r\n') + '\r\n' // BOM: Excel reads it as UTF-8
}

function saveCsv(name, columns, rows) {
  const blob = new Blob([toCsv(columns, rows)], { type: 'text/csv;charset=utf-8' })
  const a = h('a', { href: URL.createObjectURL(blob), download: `${name}.csv` })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 1000)
}

const col = (key, label, value, show, num = true) => ({ key, label, value, show, num })
const textCol = (key, label, value) => col(key, label, value, null, false)

// ---- sign-in ------------------------------------------------------------------------------------

function signInView(route, failed) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'signin-intro' })
  const form = h('form', { class: 'signin', onsubmit: async (e) => {
    e.preventDefault()
    credential.set(input.value.trim())
    session.checked = false
    if (await identify()) go([], { lang: langParam() })
    else {
      credential.clear()
      signInView(route, true)
    }
  } },
  h('h1', null, t('signin')),
  h('p', { id: 'signin-intro' }, t('signin_intro')),
  h('label', { for: 'token' }, t('token')), input,
  failed ? h('p', { class: 'error', role: 'alert' }, t('signin_failed')) : null,
  h('button', { type: 'submit' }, t('signin')))
  page(route, form)
  input.focus()
}

// ---- overview ------------------------------------------------------------------------------------

function subjects() {
  const list = session.apps.map((id) => ({ kind: 'app', id, name: id }))
  for (const g of session.groups || []) list.push({ kind: 'group', id: g.id, name: g.name })
  return list
}

/** Open anomalies: detected in the last 24 hours (the job records each hour's once). */
async function openAnomalies() {
  if (session.role !== 'admin') return null
  const body = await getOptional('/api/admin/anomalies', { limit: '1000' })
  if (!body) return null
  const since = Date.now() / 1000 - 86400
  const count = {}
  for (const a of body.anomalies) if (a.detected_at >= since) count[a.platform] = (count[a.platform] || 0) + 1
  return count
}

/** fn over every item, a few requests at a time: a deployment of a hundred platforms does
 * not open a hundred reads at once. */
async function inBatches(items, fn, width = 6) {
  const results = []
  for (let i = 0; i < items.length; i += width) results.push(...(await Promise.all(items.slice(i, i + width).map(fn))))
  return results
}

async function overviewView(route) {
  const { date: today } = nowParts()
  const list = subjects()
  const healthBy = {}
  for (const r of (session.health && session.health.platforms) || []) healthBy[r.platform] = r
  const query = { granularity: 'day', from: addDays(today, -6), to: today }
  const body = h('div', null, status(t('loading')))
  page(route, h('h1', null, t('subjects')), body)
  try {
    const [answers, anomalies] = await Promise.all([
      inBatches(list, (subject) => stats(subject, query).catch((err) => ({ error: err }))),
      openAnomalies()
    ])
    const rows = list.map((subject, i) => ({ subject, answer: answers[i] }))
    const seriesOf = (row) => (row.answer.series || []).map((b) => b.pv)
    const todayOf = (row, key) => (row.answer.series ? row.answer.series[row.answer.series.length - 1][key] : null)
    const healthOf = (row) => (row.subject.kind === 'app' ? healthBy[row.subject.id.replace(/~test$/, '')] : null)
    const columns = [
      textCol('kind', t('subject'), (row) => t(row.subject.kind === 'group' ? 'group' : 'platform')),
      col('name', t('name'), (row) => row.subject.name,
        (name, row) => h('a', { href: link([row.subject.kind, row.subject.id], { lang: langParam() }) }, name), false),
      col('pv', t('today_pv'), (row) => todayOf(row, 'pv'), fmtInt),
      col('uv', t('today_uv'), (row) => todayOf(row, 'uv'), fmtInt),
      col('trend', t('trend'), (row) => seriesOf(row).join(' '), (_, row) => sparkline(seriesOf(row), `${t('trend')}: ${seriesOf(row).join(', ')}`), false),
      col('health', t('health'), (row) => (healthOf(row) ? healthOf(row).state : null),
        (state, row) => (state ? h('span', { class: 'badge ' + state }, lang === 'zh' ? healthOf(row).state_zh : state) : '—'), false),
      col('anomalies', t('anomalies'), (row) => (anomalies && row.subject.kind === 'app' ? anomalies[row.subject.id] || 0 : null), fmtInt)
    ]
    body.replaceChildren(h('div', { 'data-query': new URLSearchParams(query).toString() }, dataTable('overview', columns, rows)))
  } catch (err) {
    body.replaceChildren(errorBlock(err))
  }
}

// ---- one platform or group -----------------------------------------------------------------------

const TABS = ['summary', 'regions', 'devices', 'pages', 'resources', 'tracks', 'health']

function subjectView(route) {
  const [kind, id] = route.parts
  const subject = { kind, id, name: id }
  const params = route.params
  const tab = TABS.includes(params.tab) ? params.tab : 'summary'
  const period = resolvePeriod(params, nowParts())
  const nav = (changes) => go(route.parts, { ...params, ...changes })
  // Links, not ARIA tabs: each view is its own URL (shared, bookmarked, opened in a new tab).
  const tabs = h('nav', { class: 'tabs', 'aria-label': id }, TABS.filter((name) => name !== 'health' || kind === 'app').map((name) =>
    h('a', { href: link(route.parts, { ...params, tab: name, prov: name === 'regions' ? params.prov : undefined }), 'aria-current': name === tab ? 'page' : null, id: 'tab-' + name }, t('tab_' + name))))
  const content = h('section', { class: 'panel', 'aria-labelledby': 'tab-' + tab }, status(t('loading')))
  page(route,
    h('h1', null, h('span', { class: 'kind' }, t(kind === 'group' ? 'group' : 'platform')), ' ', id),
    filters(params, period, nav), tabs, content)
  const views = { summary: summaryTab, regions: regionsTab, devices: devicesTab, pages: pagesTab, resources: resourcesTab, tracks: tracksTab, health: healthTab }
  views[tab](subject, period, params, nav, content).catch((err) => fill(content, errorBlock(err)))
}

function filters(params, period, nav) {
  const select = (id, label, options, value, onchange) => h('label', { for: id }, label,
    h('select', { id, onchange: (e) => onchange(e.target.value) }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))))
  const from = h('input', { id: 'from', type: 'date', value: period.from })
  const to = h('input', { id: 'to', type: 'date', value: period.to })
  return h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); nav({ p: 'custom', from: from.value, to: to.value }) } },
    select('period', t('period'), PERIODS.map((p) => [p, t('p_' + p)]), period.p, (p) => nav({ p, from: undefined, to: undefined })),
    h('label', { for: 'from' }, t('from'), from),
    h('label', { for: 'to' }, t('to'), to),
    h('button', { type: 'submit' }, t('apply')),
    select('granularity', t('granularity'), GRANULARITIES.map((g) => [g, t('g_' + g)]), period.g, (g) => nav({ g })),
    h('button', { type: 'button', id: 'copy-link', onclick: (e) => copyLink(e.target) }, t('share_link')))
}

/** Copies the view's link; where the clipboard is not offered (plain http off localhost),
 * shows the link selected instead, to copy by hand. */
function copyLink(button) {
  const showLink = () => {
    const field = h('input', { id: 'link', type: 'url', readonly: true, value: location.href, 'aria-label': t('share_link') })
    button.replaceWith(field)
    field.select()
  }
  if (!navigator.clipboard) return showLink()
  navigator.clipboard.writeText(location.href).then(() => { button.textContent = t('copied') }, showLink)
}

const rangeQuery = (range, g, extra) => ({ granularity: g, from: range.from, to: range.to, ...extra })

/** A block whose figures came from one /api/stats query (kept for tests and for curl). */
const sourced = (subject, query, ...children) =>
  h('div', { class: 'sourced', 'data-query': new URLSearchParams({ ...subjectParams(subject), ...query }).toString() }, ...children)

// -- summary

const HEADLINES = [
  ['pv', (x) => x.pv, fmtInt],
  ['uv', (x) => x.uv, fmtInt],
  ['visits', (x) => x.visits, fmtInt],
  ['bounce_rate', (x) => x.bounce_rate, fmtPct],
  ['pages_per_visitor', (x) => x.pages_per_visitor, (v) => fmtDec(v)],
  ['avg_engaged', (x) => x.avg_engaged_ms_per_visit, fmtMs]
]

async function summaryTab(subject, period, params, nav, content) {
  const query = rangeQuery(period.current, period.g)
  const compareG = period.days <= 31 ? 'hour' : 'day' // cut at the same hour of each period
  const compared = { now: rangeQuery(period.current, compareG), previous: rangeQuery(period.previous, compareG), last_year: rangeQuery(period.lastYear, compareG) }
  const [current, previous, lastYear, totalsNow] = await Promise.all([
    stats(subject, query),
    stats(subject, compared.previous),
    stats(subject, compared.last_year),
    stats(subject, compared.now)
  ])
  const queryText = (q) => new URLSearchParams({ ...subjectParams(subject), ...q }).toString()
  timezone = current.timezone || timezone
  const cards = h('div', { class: 'cards' }, HEADLINES.map(([key, get, format]) => {
    const value = get(current.totals)
    const vsPrev = change(get(totalsNow.totals), get(previous.totals))
    const vsYear = change(get(totalsNow.totals), get(lastYear.totals))
    return h('div', { class: 'card', 'data-metric': key },
      h('div', { class: 'label' }, t(key)),
      h('div', { class: 'figure', 'data-value': value ?? '' }, format(value)),
      h('div', { class: 'changes' },
        h('span', { class: changeClass(vsPrev), 'data-change': 'previous', 'data-value': vsPrev ?? '' }, `${t('vs_previous')} ${fmtChange(vsPrev)}`),
        h('span', { class: changeClass(vsYear), 'data-change': 'last_year', 'data-value': vsYear ?? '' }, `${t('vs_last_year')} ${fmtChange(vsYear)}`)))
  }))
  // The comparisons' own queries: each change is (now - then) / then of their totals.
  cards.dataset.compareNow = queryText(compared.now)
  cards.dataset.comparePrevious = queryText(compared.previous)
  cards.dataset.compareLastYear = queryText(compared.last_year)
  // "2026-09-01T08:00" reads as "09-01 08:00"; one day's hours as "08:00".
  const labels = current.series.map((b) => (period.g === 'month' ? b.bucket : period.days === 1 ? b.bucket.slice(11) || b.bucket : b.bucket.slice(5).replace('T', ' ')))
  const chart = lineChart(labels, [
    { name: 'PV', values: current.series.map((b) => b.pv), className: 'pv' },
    { name: 'UV', values: current.series.map((b) => b.uv), className: 'uv' }
  ], fmtInt)
  const seriesTable = dataTable('series', [
    textCol('bucket', t('g_' + period.g), (b) => b.bucket),
    col('pv', 'PV', (b) => b.pv, fmtInt), col('uv', 'UV', (b) => b.uv, fmtInt),
    col('visits', t('visits'), (b) => b.visits, fmtInt), col('bounce_rate', t('bounce_rate'), (b) => b.bounce_rate, fmtPct)
  ], current.series)
  const live = h('div', { class: 'live' })
  fill(content, 
    sourced(subject, query, cards),
    h('h2', null, t('series')), sourced(subject, query, h('div', { class: 'legend' }, h('span', { class: 'key pv' }, 'PV'), h('span', { class: 'key uv' }, 'UV')), chart, seriesTable),
    h('h2', null, t('live')), live)
  await liveChart(subject, live)
}

let liveTimer = null

/** The last 30 minutes by minute, redrawn every 30 s while the summary is on screen. */
async function liveChart(subject, box) {
  clearTimeout(liveTimer)
  if (!box.isConnected) return
  const now = Math.floor(Date.now() / 1000)
  const query = { granularity: 'minute', from: String(now - 29 * 60), to: String(now) }
  try {
    const answer = await stats(subject, query)
    box.replaceChildren(sourced(subject, query, lineChart(answer.series.map((b) => b.bucket.slice(-5)), [
      { name: 'PV', values: answer.series.map((b) => b.pv), className: 'pv' },
      { name: 'UV', values: answer.series.map((b) => b.uv), className: 'uv' }
    ], fmtInt)))
  } catch (err) {
    box.replaceChildren(errorBlock(err))
  }
  liveTimer = setTimeout(() => liveChart(subject, box), 30000)
}

// -- regions

const mapCache = {}
function loadMap(name) {
  if (!mapCache[name]) {
    mapCache[name] = fetch(`map/${name}.json`).then((r) => {
      if (!r.ok) throw new Error(`map ${name}: ${r.status}`)
      return r.json()
    })
  }
  return mapCache[name]
}

const regionName = (row, level) => (level === 'city' ? row.city_name : row.province_name) || row.country_name || t('unknown')

/** Rows of one level with share, rank and change against the previous period's rows. */
function rankedRows(rows, previousRows, whole) {
  const rank = (list) => new Map([...list].sort((a, b) => b.pv - a.pv).map((r, i) => [r.value, i + 1]))
  const before = new Map(previousRows.map((r) => [r.value, r]))
  const ranksBefore = rank(previousRows)
  const ranksNow = rank(rows)
  return [...rows].sort((a, b) => b.pv - a.pv).map((row) => {
    const prev = before.get(row.value)
    const prevRank = ranksBefore.get(row.value)
    return {
      ...row,
      rank: ranksNow.get(row.value),
      share: whole ? row.pv / whole : null,
      change: change(row.pv, prev ? prev.pv : 0),
      rank_change: prevRank ? prevRank - ranksNow.get(row.value) : null
    }
  })
}

async function regionsTab(subject, period, params, nav, content) {
  const query = rangeQuery(period.current, 'day', { breakdown: 'region', limit: '1000' })
  const previousQuery = rangeQuery(period.previous, 'day', { breakdown: 'region', limit: '1000' })
  // Day buckets are enough for regions; a period cut at today's hour still counts all of today.
  const [current, previous] = await Promise.all([stats(subject, query), stats(subject, previousQuery)])
  const prov = /^\d{6}$/.test(params.prov || '') ? params.prov : ''
  const provinces = current.breakdowns.region.province.filter((r) => r.country === 'CN' && r.province)
  const provinceRow = provinces.find((r) => r.province === prov)
  const level = prov ? 'city' : 'province'
  const inScope = (r) => (prov ? r.province === prov : true)
  const rows = current.breakdowns.region[level].filter(inScope)
  const previousRows = previous.breakdowns.region[level].filter(inScope)
  const whole = prov ? (provinceRow ? provinceRow.pv : 0) : current.totals.pv
  const ranked = rankedRows(rows, previousRows, whole)
  const mapBox = h('div', { class: 'map-box' }, status(t('loading')))
  const heading = prov ? `${provinceRow ? provinceRow.province_name : prov}` : t('map')
  const back = prov ? h('button', { type: 'button', id: 'map-back', onclick: () => nav({ prov: undefined }) }, t('back_to_china')) : null
  const columns = [
    col('rank', t('rank'), (r) => r.rank, fmtInt),
    textCol('region', t('region'), (r) => regionName(r, level)),
    col('pv', 'PV', (r) => r.pv, fmtInt),
    col('share', t('share'), (r) => (r.share === null ? null : +(100 * r.share).toFixed(2)), (v) => (v === null ? '—' : v.toFixed(2) + '%')),
    col('uv', 'UV', (r) => r.uv, fmtInt),
    { ...col('change', t('change'), (r) => (r.change === null ? null : +(100 * r.change).toFixed(1)), (v) => (v === null ? '—' : fmtChange(v / 100))), tone: true },
    { ...col('rank_change', t('rank_change'), (r) => r.rank_change, (v) => (v === null ? '—' : v > 0 ? '↑' + v : v < 0 ? '↓' + -v : '=')), tone: true }
  ]
  fill(content, 
    h('div', { class: 'regions-grid' },
      h('div', null, h('h2', null, heading), back, prov ? null : h('p', { class: 'hint' }, t('map_hint')), sourced(subject, query, mapBox)),
      h('div', null, h('h2', null, t('regions_table')), sourced(subject, query, dataTable(prov ? `regions-${prov}` : 'regions', columns, ranked)))),
    h('p', { class: 'attribution' }, t('attribution_ip'), ' · ', t('attribution_map')))
  const map = await loadMap(prov ? prov.slice(0, 2) : 'china')
  const values = new Map()
  for (const r of prov ? rows : provinces) {
    const code = prov ? r.city : r.province
    if (code) values.set(code, (values.get(code) || 0) + r.pv)
  }
  const names = new Map((prov ? rows : provinces).map((r) => [prov ? r.city : r.province, prov ? r.city_name : r.province_name]))
  mapBox.replaceChildren(mapChart(map, (code) => values.get(code) || 0, (code, fallback) => names.get(code) || fallback,
    prov ? null : (code) => nav({ prov: code }), (v) => `PV ${fmtInt(v)}`))
}

// -- devices, pages

async function breakdownTables(subject, period, content, dims, columnsOf, chartDim) {
  const query = rangeQuery(period.current, 'day', { breakdown: dims.join(','), limit: '100' })
  const answer = await stats(subject, query)
  const blocks = []
  for (const dim of dims) {
    const rows = answer.breakdowns[dim] || []
    blocks.push(h('h2', null, t(dim === 'subject' ? 'subject_dim' : dim)))
    if (dim === chartDim && rows.length) blocks.push(barChart(rows.map((r) => ({ label: r.value || t('unknown'), value: r.pv })), fmtInt))
    blocks.push(dataTable(dim, columnsOf(dim), rows))
  }
  fill(content, sourced(subject, query, ...blocks))
  return answer
}

const pvColumns = (dim, withUv) => [
  textCol('value', t(dim), (r) => r.value || t('unknown')),
  col('pv', 'PV', (r) => r.pv, fmtInt),
  withUv ? col('uv', 'UV', (r) => r.uv, fmtInt) : null
].filter(Boolean)

const devicesTab = (subject, period, params, nav, content) =>
  breakdownTables(subject, period, content, ['device', 'browser', 'os'], (dim) => pvColumns(dim, dim === 'device'), 'device')

const pagesTab = (subject, period, params, nav, content) =>
  breakdownTables(subject, period, content, ['page', 'page_code', 'referrer'], (dim) => pvColumns(dim, false), null)

// -- the deep tag: resources and click tracks

const RESOURCE_DIMS = ['subject', 'stage', 'rtype', 'source', 'resource']

const resourceColumns = (dim) => [
  textCol('value', t(dim === 'subject' ? 'subject_dim' : dim), (r) => r.value),
  col('views', t('views'), (r) => r.views, fmtInt),
  col('viewers', t('viewers'), (r) => r.viewers, fmtInt),
  col('watch_ms', t('watch_time'), (r) => r.watch_ms, fmtMs),
  col('read_ms', t('read_time'), (r) => r.read_ms, fmtMs),
  col('completion', t('completion'), (r) => r.completion.avg, fmtPct),
  col('ratings', t('ratings'), (r) => r.ratings, fmtInt),
  col('rating_avg', t('rating_avg'), (r) => r.rating_avg, (v) => fmtDec(v)),
  col('likes', t('likes'), (r) => r.likes_net, fmtInt),
  col('shares', t('shares'), (r) => r.shares, fmtInt),
  col('favorites', t('favorites'), (r) => r.favorites_net, fmtInt)
]

function figureCards(items) {
  return h('div', { class: 'cards' }, items.map(([key, value, format]) =>
    h('div', { class: 'card', 'data-metric': key }, h('div', { class: 'label' }, t(key)), h('div', { class: 'figure', 'data-value': value ?? '' }, format(value)))))
}

async function resourcesTab(subject, period, params, nav, content) {
  const query = rangeQuery(period.current, 'day', { breakdown: RESOURCE_DIMS.join(','), limit: '100' })
  const answer = await stats(subject, query)
  const media = answer.totals.media
  const inter = answer.totals.interactions
  const histogram = Object.entries(media.completion.histogram).map(([bin, n]) => ({ label: bin + '%', value: n }))
  fill(content, sourced(subject, query,
    figureCards([
      ['views', media.views, fmtInt], ['viewers', media.viewers, fmtInt], ['watch_time', media.watch_ms, fmtMs],
      ['read_time', media.read_ms, fmtMs], ['completion', media.completion.avg, fmtPct], ['ratings', inter.ratings, fmtInt],
      ['rating_avg', inter.rating_avg, (v) => fmtDec(v)], ['likes', inter.likes_net, fmtInt], ['shares', inter.shares, fmtInt],
      ['favorites', inter.favorites_net, fmtInt]
    ]),
    h('h2', null, t('completion_hist')), barChart(histogram, fmtInt),
    dataTable('completion', [textCol('bin', t('completion_bin'), (r) => r.label), col('sessions', t('sessions'), (r) => r.value, fmtInt)], histogram),
    ...RESOURCE_DIMS.flatMap((dim) => [h('h2', null, t(dim === 'subject' ? 'subject_dim' : dim)), dataTable(dim, resourceColumns(dim), answer.breakdowns[dim] || [])])))
}

const trackColumns = (dim) => [
  textCol('value', t(dim), (r) => r.value),
  col('exposures', t('exposures'), (r) => r.exposures, fmtInt),
  col('clicks', t('clicks'), (r) => r.clicks, fmtInt),
  col('ctr', t('ctr'), (r) => r.ctr, fmtPct),
  col('entries', t('entries'), (r) => r.entries, fmtInt)
]

async function tracksTab(subject, period, params, nav, content) {
  const query = rangeQuery(period.current, 'day', { breakdown: 'track,item', limit: '100' })
  const answer = await stats(subject, query)
  const tracks = answer.totals.tracks
  fill(content, sourced(subject, query,
    figureCards([['exposures', tracks.exposures, fmtInt], ['clicks', tracks.clicks, fmtInt], ['ctr', tracks.ctr, fmtPct], ['entries', tracks.entries, fmtInt]]),
    ...['track', 'item'].flatMap((dim) => [h('h2', null, t(dim)), dataTable(dim, trackColumns(dim), answer.breakdowns[dim] || [])])))
}

// -- health (the registry's; administrators only)

const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString(locale(), { timeZone: timezone }) : '—')

async function healthTab(subject, period, params, nav, content) {
  const platform = subject.id.replace(/~test$/, '')
  const body = session.role === 'admin' ? await getOptional(`/api/admin/platforms/${encodeURIComponent(platform)}/health`) : null
  if (!body) {
    fill(content, status(t('admin_only')))
    return
  }
  const record = body.health
  const reasons = record ? record.reasons.map((r) => (lang === 'zh' ? r.zh : r.en)) : []
  fill(content, 
    h('p', null, `${t('state')}: `, record ? h('span', { class: 'badge ' + record.state, 'data-state': record.state }, lang === 'zh' ? record.state_zh : record.state) : '—'),
    reasons.length ? h('ul', { class: 'reasons' }, reasons.map((r) => h('li', null, r))) : null,
    h('h2', null, t('anomalies')),
    dataTable('anomalies', [
      textCol('hour', t('hour'), (a) => a.hour), textCol('metric', t('metric'), (a) => a.metric),
      textCol('kind', t('kind'), (a) => a.kind), textCol('severity', t('severity'), (a) => a.severity),
      col('value', t('actual'), (a) => a.value, fmtInt), col('expected', t('expected'), (a) => a.expected, (v) => fmtDec(v, 1)),
      textCol('detected', t('detected'), (a) => when(a.detected_at))
    ], body.anomalies),
    h('h2', null, t('history')),
    dataTable('health-history', [
      textCol('at', t('detected'), (x) => when(x.at)), textCol('before', t('state'), (x) => `${x.before || '—'} → ${x.after}`),
      textCol('reasons', t('reasons'), (x) => (x.reasons || []).join('; '))
    ], body.history))
}

// ---- start ----------------------------------------------------------------------------------------

async function render() {
  clearTimeout(liveTimer)
  const route = parseRoute()
  setLang(route.params.lang || 'zh')
  if (route.parts[0] === 'signin') return signInView(route, false)
  if (!session.checked) {
    page(route, status(t('loading')))
    let ok
    try {
      ok = await identify()
    } catch (err) {
      page(route, errorBlock(err))
      return
    }
    if (!ok) {
      credential.clear()
      return go(['signin'], { lang: langParam() })
    }
  }
  if ((route.parts[0] === 'app' || route.parts[0] === 'group') && route.parts[1]) return subjectView(route)
  return overviewView(route)
}

window.addEventListener('hashchange', render)
render()
