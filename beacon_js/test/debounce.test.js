import { test, mock } from 'node:test'
import assert from 'node:assert/strict'
import { debounce } from '../src/debounce.js'

test('a burst of calls runs once, after the last one settles', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const fn = mock.fn()
  const d = debounce(fn, 200)
  d()
  t.mock.timers.tick(150)
  d()
  t.mock.timers.tick(150)
  d()
  assert.equal(fn.mock.callCount(), 0)
  t.mock.timers.tick(199)
  assert.equal(fn.mock.callCount(), 0)
  t.mock.timers.tick(1)
  assert.equal(fn.mock.callCount(), 1)
})

test('calls far apart run each time', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const fn = mock.fn()
  const d = debounce(fn, 200)
  for (let i = 0; i < 3; i++) {
    d()
    t.mock.timers.tick(250)
  }
  assert.equal(fn.mock.callCount(), 3)
})
