// The beacon cuts every field it sends exactly at the protocol's limit: not one
// character less (the collector would take it), not one more (the collector would reject
// the event). The limits are protocol-limits.json, generated from the collector's
// protocol table (collector/hit/protocol_limits.py; tests/test_protocol_limits.py keeps
// it current).
import './fake-page.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { element } from './fake-page.js'
import { cfg } from '../src/util.js'
import { commands, hook } from '../src/core.js'
import { int, props, resource } from '../src/fields.js'
import { BOUNDS } from '../src/media.js'
import { click } from '../src/clicks.js'
import { item, name } from '../src/tracks.js'
import { send as sendMedia } from '../src/players.js'
import '../src/deep.js'
import '../src/page.js'

const LIMITS = JSON.parse(readFileSync(new URL('./protocol-limits.json', import.meta.url)))
const MAX = LIMITS.strings

// Every event the beacon makes, as it goes into the batch.
const sent = []
const stamp = hook.emit
hook.emit = function (e) {
  stamp(e)
  sent.push(e)
}
function last(type) {
  return sent.filter((e) => e.t == type).at(-1)
}

// Far too long for any field.
const LONG = 'x'.repeat(5000)

function cutAt(value, field) {
  assert.equal(value.length, MAX[field], field + ' is cut at the protocol\'s ' + MAX[field])
}

test('page views: URL, referrer, title and page code', () => {
  commands.pageview({ url: 'https://www.example.edu/' + LONG, referrer: 'https://ref.example.edu/' + LONG, title: LONG, pageCode: LONG })
  const pv = last('pageview')
  for (const field of ['u', 'r', 'ti', 'pc']) cutAt(pv[field], field)
})

test('named events: record() and data-eb-click names', () => {
  commands.record(LONG, 'CLK')
  cutAt(last('click').n, 'n')
  const target = element({ 'data-eb-click': LONG })
  target.closest = (selector) => (selector == '[data-eb-click]' ? target : null)
  click({ type: 'click', target })
  cutAt(last('click').n, 'n')
})

test('click tracks: component id and item names', () => {
  const track = element({ 'data-eb-track': LONG })
  const it = element({ 'data-eb-pos': '3', 'data-eb-item': LONG }, { '[data-eb-track]': track })
  const found = item(element({}, { '[data-eb-pos]': it }))
  cutAt(found.tr, 'tr')
  cutAt(found.n, 'n')
  assert.equal(found.pos, 3)
  // An item without data-eb-item is named by its text.
  cutAt(name(Object.assign(element({}), { textContent: LONG })), 'n')
})

test('resource fields of media and interactions', () => {
  const r = resource(() => LONG)
  for (const field of ['rid', 'rt', 'subj', 'stage', 'src']) cutAt(r[field], field)
  sendMedia(element({}), { rid: LONG, rt: LONG, subj: LONG, stage: LONG, src: LONG, dur: 60 }, 'play', { ms: 's1', ws: 0, wt: 0, pos: 0 })
  const m = last('media')
  for (const field of ['rid', 'rt', 'subj', 'stage', 'src']) cutAt(m[field], field)
})

test('share channels', () => {
  commands.share('v1', LONG)
  cutAt(last('interaction').ch, 'ch')
})

test('the user id', () => {
  commands.setUser(LONG)
  cutAt(cfg.userId, 'uid')
  commands.set('_user_id', LONG)
  cutAt(cfg.userId, 'uid')
  commands.setUser()
})

test('event properties: number of keys, key and value lengths', () => {
  const many = {}
  for (let i = 0; i < LIMITS.props.max_keys + 10; i++) many['k' + i] = i
  assert.equal(Object.keys(props(many)).length, LIMITS.props.max_keys)
  const p = props({ [LONG]: LONG })
  const [key] = Object.keys(p)
  assert.equal(key.length, LIMITS.props.max_key)
  assert.equal(p[key].length, LIMITS.props.max_value)
})

test('positions, durations and seconds: whole numbers in the protocol range', () => {
  for (const field of ['pos', 'dur', 'ws', 'epos']) {
    const [lo, hi] = LIMITS.integers[field]
    assert.equal(int(hi), hi, field)
    assert.equal(int(hi + 1), null, field)
    assert.equal(int(lo), lo, field)
    assert.equal(int(lo - 1), null, field)
  }
})

test('progress boundaries and interactions are the protocol\'s', () => {
  assert.deepEqual(BOUNDS, LIMITS.progress_boundaries)
  const before = sent.length
  for (const n of LIMITS.interactions) commands[n]('v1', n == 'rate' ? 5 : 'wechat', {})
  assert.deepEqual(sent.slice(before).map((e) => e.n).sort(), LIMITS.interactions)
  const [lo, hi] = LIMITS.integers.score
  commands.rate('v1', hi + 1)
  commands.rate('v1', lo - 1)
  assert.equal(sent.length, before + LIMITS.interactions.length, 'a score outside the range is not sent')
})
