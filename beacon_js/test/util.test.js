import { test } from 'node:test'
import assert from 'node:assert/strict'
import { clip, load, save, rid } from '../src/util.js'

test('clip cuts to length and never leaves half a surrogate pair', () => {
  assert.equal(clip('abcdef', 3), 'abc')
  assert.equal(clip('ab😀cd', 3), 'ab', 'the emoji would be cut in half: dropped whole')
  assert.equal(clip('ab😀cd', 4), 'ab😀')
  assert.equal(clip(12345, 2), '12')
  assert.equal(clip(null, 2), null)
  assert.equal(clip(undefined, 2), undefined)
})

test('storage without localStorage keeps values in memory for the page', () => {
  assert.equal(typeof globalThis.localStorage, 'undefined')
  save('x', { a: 1 })
  assert.deepEqual(load('x'), { a: 1 })
  save('x')
  assert.equal(load('x'), undefined)
})

test('ids are unique base-36 strings', () => {
  const ids = new Set(Array.from({ length: 1000 }, rid))
  assert.equal(ids.size, 1000)
  for (const id of ids) assert.match(id, /^[0-9a-z]{10,20}$/)
})
