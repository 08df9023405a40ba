import { test } from 'node:test'
import assert from 'node:assert/strict'
import { int, props, resource } from '../src/fields.js'

test('int: whole numbers in range, else null', () => {
  assert.equal(int(4.6), 5)
  assert.equal(int('12'), 12)
  for (const bad of [NaN, Infinity, -1, 'x', undefined, null, 1e7]) assert.equal(int(bad), null)
})

test('props are cut to the protocol limits', () => {
  const big = {}
  for (let i = 0; i < 40; i++) big['k' + i] = i
  assert.equal(Object.keys(props(big)).length, 32)
  const p = props({ s: 'x'.repeat(300), ['y'.repeat(70)]: true, o: {}, a: [1], n: NaN, f: 1.5, u: undefined })
  assert.deepEqual(Object.keys(p), ['s', 'y'.repeat(64), 'f'])
  assert.equal(p.s.length, 256)
  assert.equal(props({}), undefined)
  assert.equal(props(undefined), undefined)
})

test('resource fields are cut: rid 128, rt 16, others 64', () => {
  const r = resource((k) => k.repeat(200))
  assert.equal(r.rid.length, 128)
  assert.equal(r.rt.length, 16)
  assert.equal(r.subj.length, 64)
  assert.equal(r.stage.length, 64)
  assert.equal(r.src.length, 64)
})
