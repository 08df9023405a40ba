import { test } from 'node:test'
import assert from 'node:assert/strict'
import { enqueue, CAP, MAX_AGE } from '../src/queue.js'

const T0 = 1_800_000_000_000
const ev = (i, ts = T0) => ({ t: 'pageview', id: String(i), ts })

test('events are appended in order', () => {
  const q = enqueue(enqueue(undefined, [ev(1), ev(2)], T0), [ev(3)], T0)
  assert.deepEqual(q.map((e) => e.id), ['1', '2', '3'])
})

test('the queue keeps the newest CAP events', () => {
  let q
  for (let i = 0; i < CAP + 17; i++) q = enqueue(q, [ev(i)], T0)
  assert.equal(q.length, CAP)
  assert.equal(q[0].id, '17')
  assert.equal(q[CAP - 1].id, String(CAP + 16))
})

test('a big batch is capped too', () => {
  const q = enqueue([], Array.from({ length: 3 * CAP }, (_, i) => ev(i)), T0)
  assert.equal(q.length, CAP)
  assert.equal(q[0].id, String(2 * CAP))
})

test('events older than a day are dropped', () => {
  const q = enqueue([ev('old', T0 - MAX_AGE), ev('young', T0 - MAX_AGE + 1)], [ev('new')], T0)
  assert.deepEqual(q.map((e) => e.id), ['young', 'new'])
})

test('the cap fits a POST: 50 events, 16 KB bodies are split by the sender', () => {
  assert.equal(CAP, 50)
  assert.equal(MAX_AGE, 86_400_000)
})

test('a kept event is marked as sent before (re: 1) and keeps its id and time', () => {
  const q = enqueue([], [ev('a', T0 - 5)], T0)
  assert.deepEqual(q, [{ t: 'pageview', id: 'a', ts: T0 - 5, re: 1 }])
})
