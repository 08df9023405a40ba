import { test } from 'node:test'
import assert from 'node:assert/strict'
import { touch, TIMEOUT } from '../src/session.js'

const T0 = 1_800_000_000_000

test('the first activity starts a session; page views count in it', () => {
  const s = touch(undefined, T0, true)
  assert.equal(s.n, 1)
  assert.equal(s.t, T0)
  assert.match(s.i, /^[0-9a-z]{10,}$/)
  const again = touch(s, T0 + 60_000, true)
  assert.equal(again.i, s.i)
  assert.equal(again.n, 2)
})

test('other events keep the session without counting a page view', () => {
  const s = touch(touch(undefined, T0, true), T0 + 1000, false)
  assert.equal(s.n, 1)
  assert.equal(s.t, T0 + 1000)
})

test('30 minutes of inactivity end the visit, 30 minutes exactly do not', () => {
  const s = touch(undefined, T0, true)
  const id = s.i
  assert.equal(touch({ ...s }, T0 + TIMEOUT, true).i, id)
  const late = touch({ ...s }, T0 + TIMEOUT + 1, true)
  assert.notEqual(late.i, id)
  assert.equal(late.n, 1)
})

test('activity moves the deadline', () => {
  let s = touch(undefined, T0, true)
  const id = s.i
  for (let k = 1; k <= 6; k++) s = touch(s, T0 + k * 20 * 60_000, false)
  assert.equal(s.i, id, 'two hours of events 20 minutes apart are one visit')
})

test('a page engaged all along keeps the visit however long', () => {
  const s = touch(undefined, T0, true)
  assert.equal(touch({ ...s }, T0 + 3 * TIMEOUT, false, true).i, s.i)
  assert.notEqual(touch({ ...s }, T0 + 3 * TIMEOUT, false, false).i, s.i)
})

test('TIMEOUT is 30 minutes', () => {
  assert.equal(TIMEOUT, 30 * 60 * 1000)
})
