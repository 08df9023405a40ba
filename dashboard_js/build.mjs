// Builds dist/ from src/ and the map data: `node build.mjs [--outdir DIR]`.
//
//   dist/index.html       the page the collector serves at /dashboard
//   dist/dashboard.js     the app (src/main.js and what it imports), minified
//   dist/dashboard.css    its style sheet
//   dist/map/china.json   provinces of China as SVG path data (loaded with the page's first
//                         map), with the South China Sea islands inset as ECharts draws it
//   dist/map/NN.json      one province's prefectures, NN = the first two digits of its
//                         GB/T 2260 code (fetched only when a user drills into it)
//   dist/manifest.json    version, and raw/gzip sizes of every file (the size budget:
//                         tests/test_dashboard_build.py holds the total gzip under 150 KB)
//
// The maps come from the npm package echarts@4.9.0 (Apache-2.0): map/json/china.json and
// map/json/province/*.json, GeoJSON whose feature ids are GB/T 2260 codes and whose
// coordinates use ECharts' compressed encoding (decoded here exactly as ECharts'
// lib/coord/geo/parseGeoJson.js does). Each map is projected (equirectangular, longitude
// shrunk by the cosine of the map's middle latitude, so shapes look right at China's
// latitudes), simplified (Douglas-Peucker) and written as integer relative path data,
// a few tens of KB where the source is megabytes. The output is deterministic:
// tests/test_dashboard_build.py rebuilds into a temporary directory and compares.
import { build } from 'esbuild'
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const { version } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'))
const args = process.argv.slice(2)
const outdir = resolve(args.includes('--outdir') ? args[args.indexOf('--outdir') + 1] : join(here, 'dist'))
const echartsMaps = join(here, 'node_modules', 'echarts', 'map', 'json')

// ---- maps --------------------------------------------------------------------------------

function decodeRing(text, offsets, scale) {
  const ring = []
  let x = offsets[0]
  let y = offsets[1]
  for (let i = 0; i < text.length; i += 2) {
    let dx = text.charCodeAt(i) - 64
    let dy = text.charCodeAt(i + 1) - 64
    dx = (dx >> 1) ^ -(dx & 1) // zigzag
    dy = (dy >> 1) ^ -(dy & 1)
    x += dx
    y += dy
    ring.push([x / scale, y / scale])
  }
  return ring
}

/** The feature's polygons as lists of [lon, lat] rings. */
function polygonsOf(feature, encoded, scale) {
  const g = feature.geometry
  const polygons = g.type === 'Polygon' ? [g.coordinates] : g.coordinates
  const offsets = g.type === 'Polygon' ? [g.encodeOffsets] : g.encodeOffsets
  // Some features have no shape at all (xizang.json's 540500): no polygons, not an empty one.
  const decoded = encoded ? polygons.map((rings, p) => rings.map((ring, r) => decodeRing(ring, offsets[p][r], scale))) : polygons
  return decoded.filter((rings) => rings.length && rings[0].length)
}

function perpendicular(p, a, b) {
  const dx = b[0] - a[0]
  const dy = b[1] - a[1]
  const len = Math.hypot(dx, dy)
  if (len === 0) return Math.hypot(p[0] - a[0], p[1] - a[1])
  return Math.abs(dy * p[0] - dx * p[1] + b[0] * a[1] - b[1] * a[0]) / len
}

/** Douglas-Peucker, iterative (rings have thousands of points). */
function simplify(points, tolerance) {
  if (points.length < 4) return points
  const keep = new Uint8Array(points.length)
  keep[0] = keep[points.length - 1] = 1
  const stack = [[0, points.length - 1]]
  while (stack.length) {
    const [first, last] = stack.pop()
    let worst = 0
    let index = -1
    for (let i = first + 1; i < last; i++) {
      const d = perpendicular(points[i], points[first], points[last])
      if (d > worst) { worst = d; index = i }
    }
    if (worst > tolerance && index > 0) {
      keep[index] = 1
      stack.push([first, index], [index, last])
    }
  }
  return points.filter((_, i) => keep[i])
}

/** Numbers joined as SVG path data does: a space only where no minus sign separates them. */
function joinNumbers(numbers) {
  return numbers.reduce((text, n, i) => text + (i === 0 || n < 0 ? '' : ' ') + n, '')
}

/** "M12 34l1-2 3 4z": integer points, the first absolute, the rest relative; repeats dropped. */
function pathData(ring) {
  const deltas = []
  for (let i = 1; i < ring.length; i++) {
    const dx = ring[i][0] - ring[i - 1][0]
    const dy = ring[i][1] - ring[i - 1][1]
    if (dx || dy) deltas.push(dx, dy)
  }
  return `M${joinNumbers(ring[0])}l${joinNumbers(deltas)}z`
}

/** The South China Sea islands inset (南海诸岛), which ECharts draws on its China map from
 * lib/coord/geo/fix/nanhai.js rather than from china.json: its outlines, as [lon, lat]
 * rings, read from that file and placed as ECharts places them. */
function nanhaiRings() {
  const source = readFileSync(join(here, 'node_modules', 'echarts', 'lib', 'coord', 'geo', 'fix', 'nanhai.js'), 'utf8')
  const origin = JSON.parse(source.match(/var geoCoord = (\[[^\]]*\]);/)[1])
  const rings = JSON.parse(source.match(/var points = (\[\[\[.*?\]\]\]);/s)[1])
  return rings.map((ring) => ring.map(([x, y]) => [x / 10.5 + origin[0], y / (-10.5 / 0.75) + origin[1]]))
}

function convertMap(json, width, tolerance, minSize, codeOf, decoration = []) {
  const encoded = !!json.UTF8Encoding
  const scale = json.UTF8Scale ?? 1024
  const features = json.features
    .map((f) => ({ code: codeOf(f), name: f.properties.name, cp: f.properties.cp, polygons: polygonsOf(f, encoded, scale) }))
    .filter((f) => f.code)
  let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity
  for (const f of features) for (const rings of f.polygons) for (const [lon, lat] of rings[0]) {
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon)
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat)
  }
  const shrink = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180)
  const k = width / ((maxLon - minLon) * shrink)
  const project = ([lon, lat]) => [(lon - minLon) * shrink * k, (maxLat - lat) * k]
  const height = Math.ceil((maxLat - minLat) * k)
  const extra = decoration.map((ring) => pathData(ring.map(project).map(([x, y]) => [Math.round(x), Math.round(y)]))).join('')
  const extent = (ring) => {
    const xs = ring.map((p) => p[0])
    const ys = ring.map((p) => p[1])
    return Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys))
  }
  const out = features.map((f) => {
    const outers = f.polygons.map((rings) => rings[0].map(project)) // holes (rare, tiny lakes) are left out
    // Islets below minSize are dropped, but never a whole region (Macau is one).
    const largest = Math.max(...outers.map(extent))
    let d = ''
    for (const outer of outers) {
      if (extent(outer) < minSize && extent(outer) < largest) continue
      const ring = simplify(outer, tolerance).map(([x, y]) => [Math.round(x), Math.round(y)])
      if (ring.length >= 3) d += pathData(ring)
      else if (extent(outer) === largest) d += pathData([ring[0], [ring[0][0] + 1, ring[0][1]], [ring[0][0], ring[0][1] + 1]])
    }
    const label = f.cp ? project(f.cp).map(Math.round) : null
    return [f.code, f.name, d, label]
  }).filter((f) => f[2])
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return extra ? { w: width, h: height, f: out, x: extra } : { w: width, h: height, f: out }
}

/** A prefecture's code from a feature id: municipalities' maps show districts
 * (110101), whose prefecture is the code's first four digits (110100). */
const prefectureOf = (f) => (/^\d{6}$/.test(f.id ?? '') ? f.id.slice(0, 4) + '00' : '')
const provinceOf = (f) => (/^\d{6}$/.test(f.id ?? '') ? f.id : '')

function buildMaps() {
  const maps = { 'china.json': convertMap(JSON.parse(readFileSync(join(echartsMaps, 'china.json'), 'utf8')), 1000, 1.1, 3, provinceOf, nanhaiRings()) }
  const provinceDir = join(echartsMaps, 'province')
  for (const file of readdirSync(provinceDir).sort()) {
    if (!file.endsWith('.json')) continue
    const json = JSON.parse(readFileSync(join(provinceDir, file), 'utf8'))
    const first = json.features.map(prefectureOf).find(Boolean)
    if (!first) continue // taiwan.json has no codes (and Taiwan's regions are not prefectures here)
    maps[first.slice(0, 2) + '.json'] = convertMap(json, 500, 1.6, 4, prefectureOf)
  }
  return maps
}

// ---- the app -----------------------------------------------------------------------------

async function bundle() {
  const result = await build({
    entryPoints: [join(here, 'src', 'main.js')],
    bundle: true,
    format: 'iife',
    target: 'es2019', // the monitoring staff's browsers: any current Chrome, Edge, Firefox, Safari, 360
    charset: 'utf8',
    minify: true,
    legalComments: 'none',
    define: { __VERSION__: JSON.stringify(version) },
    write: false,
    logLevel: 'warning'
  })
  return result.outputFiles[0].text
}

const files = {}
files['dashboard.js'] = Buffer.from(await bundle())
files['dashboard.css'] = readFileSync(join(here, 'src', 'dashboard.css'))
files['index.html'] = Buffer.from(readFileSync(join(here, 'src', 'index.html'), 'utf8').replaceAll('__VERSION__', version))
for (const [name, map] of Object.entries(buildMaps())) files['map/' + name] = Buffer.from(JSON.stringify(map))

rmSync(join(outdir, 'map'), { recursive: true, force: true })
mkdirSync(join(outdir, 'map'), { recursive: true })
const sizes = {}
let gzipTotal = 0
for (const name of Object.keys(files).sort()) {
  writeFileSync(join(outdir, name), files[name])
  const gzip = gzipSync(files[name], { level: 9 }).length
  sizes[name] = { raw: files[name].length, gzip }
  gzipTotal += gzip
}
const manifest = { version, gzip_total: gzipTotal, files: sizes }
writeFileSync(join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
console.log(`dashboard ${version}: ${Object.keys(files).length} files, ${gzipTotal} B gzip in all -> ${outdir}`)
