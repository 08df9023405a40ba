// Builds dist/ from src/: `node build.mjs [--outdir DIR]`.
//
//   dist/beacon.js          the basic tag (served at /beacon.js, cached an hour)
//   dist/beacon-VERSION.js  a frozen copy of it, for pages that pin it with SRI
//   dist/beacon.debug.js    the same code with DEBUG logging, readable; beacon.js
//                           loads it in its place when DEBUG is switched on
//   dist/beacon.full.js     the full build (deep tag, JY/T §7.1.3): the basic tag plus
//                           user id, clicks, click tracks, exposure, media, interactions
//   dist/beacon.full-VERSION.js        its frozen copy, for SRI
//   dist/beacon.full.debug.js          its DEBUG build
//   dist/manifest.json      version, sha384 SRI, raw/gzip/brotli sizes (of both builds)
//
// `FULL` is a build constant like `DEBUG`: true in the full build, false in the basic
// one, where every `FULL && ...` and the modules only it reaches disappear, so the
// basic build is byte for byte what it would be without the deep tag.
//
// esbuild bundles the ES modules into one ES5 IIFE; terser minifies it (it packs this
// code ~4% tighter than esbuild's own minifier, which matters under a 2.5 KB budget).
// The output is deterministic: tests/test_beacon_build.py rebuilds into a temporary
// directory and compares. A frozen file that exists with other bytes is never
// overwritten: published pages pin it by hash, so a changed beacon needs a new
// "version" in package.json.
import { build } from 'esbuild'
import { minify } from 'terser'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const { version } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'))
const args = process.argv.slice(2)
const outdir = resolve(args.includes('--outdir') ? args[args.indexOf('--outdir') + 1] : join(here, 'dist'))

async function bundle(entry, debug, full) {
  const result = await build({
    entryPoints: [join(here, entry)],
    bundle: true,
    format: 'iife',
    // ES5 syntax: the script must at least parse in the old browsers still found on
    // school computers, so that it cannot throw a SyntaxError into the host page;
    // what they lack at run time is feature-tested (basic.js).
    target: 'es5',
    charset: 'utf8',
    legalComments: 'none',
    define: { __VERSION__: JSON.stringify(version), DEBUG: String(debug), FULL: String(!!full) },
    write: false,
    logLevel: 'warning'
  })
  return result.outputFiles[0].text
}

async function tiny(code) {
  const result = await minify(code, {
    ecma: 5,
    toplevel: true,
    compress: { passes: 3 },
    format: { comments: false }
  })
  return result.code
}

const basic = Buffer.from((await tiny(await bundle('src/basic.js', false))) + '\n')
const debug = Buffer.from(`/* edu-beacon ${version}, debug build */\n` + (await bundle('src/basic.js', true)))
const full = Buffer.from((await tiny(await bundle('src/full.js', false, true))) + '\n')
const fullDebug = Buffer.from(`/* edu-beacon ${version}, full build, debug */\n` + (await bundle('src/full.js', true, true)))

mkdirSync(outdir, { recursive: true })
const frozen = `beacon-${version}.js`
const fullFrozen = `beacon.full-${version}.js`
for (const [name, bytes] of [[frozen, basic], [fullFrozen, full]]) {
  const path = join(outdir, name)
  if (existsSync(path) && !readFileSync(path).equals(bytes)) {
    console.error(`${name} exists with other bytes, and pages pin it by SRI hash:\n` +
      'bump "version" in beacon_js/package.json (or delete the file if that version was never released).')
    process.exit(1)
  }
}
writeFileSync(join(outdir, 'beacon.js'), basic)
writeFileSync(join(outdir, frozen), basic)
writeFileSync(join(outdir, 'beacon.debug.js'), debug)
writeFileSync(join(outdir, 'beacon.full.js'), full)
writeFileSync(join(outdir, fullFrozen), full)
writeFileSync(join(outdir, 'beacon.full.debug.js'), fullDebug)

function sizes(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length
  }
}
const sri = (bytes) => 'sha384-' + createHash('sha384').update(bytes).digest('base64')
// The basic build's entries stay where they were (the collector and bench read them).
const manifest = {
  version,
  files: { latest: 'beacon.js', frozen, debug: 'beacon.debug.js' },
  sri: sri(basic),
  sizes: sizes(basic),
  full: {
    files: { latest: 'beacon.full.js', frozen: fullFrozen, debug: 'beacon.full.debug.js' },
    sri: sri(full),
    sizes: sizes(full)
  }
}
writeFileSync(join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
for (const [name, s] of [['beacon', manifest.sizes], ['beacon.full', manifest.full.sizes]]) {
  console.log(`${name} ${version}: ${s.raw} B raw, ${s.gzip} B gzip, ${s.brotli} B brotli -> ${outdir}`)
}
