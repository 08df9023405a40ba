// Hand-written SVG charts and the map: small, no charting library (the size budget).

const NS = 'http://www.w3.org/2000/svg'

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag)
  for (const [name, value] of Object.entries(attrs || {})) if (value !== undefined && value !== null) el.setAttribute(name, value)
  for (const child of children) if (child !== null && child !== undefined) el.append(child)
  return el
}

const title = (text) => s('title', null, text)

/** Sequential blues, light to dark; no hits is a neutral grey that even the lightest
 * blue stands out from, so one page view is visible on the map. */
export const SCALE = ['#a9cde8', '#7fb3db', '#4a90c8', '#2370b0', '#08519c']
export const NO_HITS = '#eceff1'

export function colourOf(value, max) {
  if (!value || !max) return NO_HITS
  // Linear: a region with half the top region's views is half as dark.
  const step = Math.ceil((value / max) * SCALE.length) - 1
  return SCALE[Math.min(SCALE.length - 1, Math.max(0, step))]
}

function niceMax(value) {
  if (value <= 0) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const f of [1, 2, 2.5, 5, 10]) if (f * power >= value) return f * power
  return 10 * power
}

/** A line chart: lines = [{name, values, className}], labels = x labels. */
export function lineChart(labels, lines, format) {
  const W = 640, H = 220, L = 56, R = 12, T = 12, B = 28
  const max = niceMax(Math.max(0, ...lines.flatMap((l) => l.values)))
  const x = (i) => L + (labels.length < 2 ? (W - L - R) / 2 : (i * (W - L - R)) / (labels.length - 1))
  const y = (v) => T + (H - T - B) * (1 - v / max)
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' })
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }))
    svg.append(s('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, Number.isInteger(v) ? format(v) : v.toFixed(1)))
  }
  const every = Math.max(1, Math.ceil(labels.length / 8))
  const last = labels.length - 1
  labels.forEach((label, i) => {
    // Every `every`-th label, and the last one unless it would overlap the one before.
    const shown = i === last ? i % every === 0 || i % every >= every / 2 : i % every === 0
    const anchor = i === last && labels.length > 1 ? 'end' : i === 0 && labels.length > 1 ? 'start' : 'middle'
    if (shown) svg.append(s('text', { x: x(i), y: H - 8, class: 'axis', 'text-anchor': anchor }, label))
  })
  for (const line of lines) {
    const points = line.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    svg.append(s('polyline', { points, class: 'line ' + line.className }))
    line.values.forEach((v, i) => {
      svg.append(s('circle', { cx: x(i), cy: y(v), r: labels.length > 60 ? 1.5 : 3, class: 'dot ' + line.className },
        title(`${labels[i]} ${line.name}: ${format(v)}`)))
    })
  }
  return svg
}

/** A sparkline of a few values (the overview's trend). */
export function sparkline(values, label) {
  const W = 120, H = 28
  const max = Math.max(1, ...values)
  const x = (i) => (values.length < 2 ? W / 2 : (i * (W - 4)) / (values.length - 1) + 2)
  const y = (v) => H - 3 - ((H - 6) * v) / max
  return s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img', 'aria-label': label },
    title(label), s('polyline', { points: values.map((v, i) => `${x(i)},${y(v)}`).join(' '), class: 'line pv' }))
}

/** Horizontal bars: rows = [{label, value}]. */
export function barChart(rows, format) {
  const W = 640, rowH = 24, L = 150
  const max = Math.max(1, ...rows.map((r) => r.value))
  const svg = s('svg', { viewBox: `0 0 ${W} ${Math.max(rowH, rows.length * rowH)}`, class: 'chart bars', role: 'img' })
  rows.forEach((row, i) => {
    const width = ((W - L - 80) * row.value) / max
    const y = i * rowH
    svg.append(s('text', { x: L - 8, y: y + 16, class: 'axis', 'text-anchor': 'end' }, row.label.length > 22 ? row.label.slice(0, 21) + '…' : row.label))
    svg.append(s('rect', { x: L, y: y + 4, width: Math.max(1, width), height: rowH - 8, class: 'bar' }, title(`${row.label}: ${format(row.value)}`)))
    svg.append(s('text', { x: L + width + 6, y: y + 16, class: 'axis' }, format(row.value)))
  })
  return svg
}

/** The map: features [code, name, pathData, labelPoint]; values by code. Each region
 * with a value is a focusable button when onSelect is given. */
export function mapChart(map, valueOf, nameOf, onSelect, describe) {
  const svg = s('svg', { viewBox: `0 0 ${map.w} ${map.h}`, class: 'map', role: 'group' })
  const max = Math.max(0, ...map.f.map(([code]) => valueOf(code)))
  if (map.x) svg.append(s('path', { d: map.x, class: 'inset' })) // 南海诸岛
  for (const [code, name, d] of map.f) {
    const value = valueOf(code)
    const label = `${nameOf(code, name)}: ${describe(value)}`
    const path = s('path', { d, fill: colourOf(value, max), 'data-code': code, 'data-pv': value, class: value ? 'region hit' : 'region' }, title(label))
    if (onSelect) {
      path.setAttribute('tabindex', '0')
      path.setAttribute('role', 'button')
      path.setAttribute('aria-label', label)
      path.addEventListener('click', () => onSelect(code))
      path.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(code) }
      })
    }
    svg.append(path)
  }
  const legend = s('svg', { viewBox: '0 0 260 34', class: 'map-legend', role: 'img', 'aria-label': `0 – ${describe(max)}` },
    ...[NO_HITS, ...SCALE].map((colour, i) => s('rect', { x: i * 40, y: 0, width: 40, height: 12, fill: colour })),
    s('text', { x: 0, y: 28, class: 'axis' }, '0'),
    s('text', { x: 240, y: 28, class: 'axis', 'text-anchor': 'end' }, describe(max)))
  const box = document.createElement('div')
  box.className = 'map-wrap'
  box.append(svg, legend)
  return box
}
