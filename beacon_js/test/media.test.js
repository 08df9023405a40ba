import { test } from 'node:test'
import assert from 'node:assert/strict'
import { player, reader, PING_MS, BOUNDS } from '../src/media.js'

const T0 = 1_800_000_000_000

// A session of a `dur`-second resource; `events` collects what it sends.
function session(t, dur = 100) {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 })
  const events = []
  const s = player((n, x) => events.push({ n, ...x }), () => dur)
  const names = (n) => events.filter((e) => !n || e.n == n)
  return { s, events, names }
}

// Plays from `from` to `to` seconds in real time, a position every 250 ms (as browsers
// fire timeupdate), advancing the fake clock.
function playThrough(t, s, from, to, rate = 1) {
  for (let pos = from; pos < to; ) {
    t.mock.timers.tick(250)
    pos = Math.min(to, pos + 0.25 * rate)
    s.timeupdate(pos, rate)
  }
}

test('playing a whole resource counts each content second once and reaches every boundary once', (t) => {
  const { s, events, names } = session(t, 20)
  s.play(0)
  playThrough(t, s, 0, 20)
  s.pause(20)
  s.ended(20)
  const last = events.at(-1)
  assert.equal(last.n, 'ended')
  assert.equal(last.ws, 20)
  assert.deepEqual(names('progress').map((e) => e.pb), BOUNDS)
  // Played again: nothing new, no boundary again.
  s.play(0)
  playThrough(t, s, 0, 20)
  s.pause(20)
  assert.equal(names('progress').length, BOUNDS.length)
  assert.equal(events.at(-1).ws, 20)
})

test('seeking straight to the end counts a few seconds and no completion', (t) => {
  const { s, events, names } = session(t, 600)
  s.play(0)
  playThrough(t, s, 0, 2)
  s.seeking()
  s.seeked(598)
  s.timeupdate(598)
  playThrough(t, s, 598, 600)
  s.ended(600)
  assert.ok(events.at(-1).ws <= 5, events.at(-1).ws)
  assert.deepEqual(names('progress'), [])
  assert.equal(names('seek')[0].pos, 598)
})

test('a position that jumps without a seek event is not counted either', (t) => {
  const { s, events } = session(t, 600)
  s.play(0)
  playThrough(t, s, 0, 3)
  t.mock.timers.tick(250)
  s.timeupdate(500) // a custom player that reports no seeks
  playThrough(t, s, 500, 503)
  s.pause(503)
  assert.equal(events.at(-1).ws, 6)
})

test('faster playback counts the content seconds played, in less wall-clock time', (t) => {
  const { s, events } = session(t, 100)
  s.play(0)
  playThrough(t, s, 0, 40, 2) // 40 content seconds in 20 s
  s.pause(40)
  assert.equal(events.at(-1).ws, 40)
  const wall = events.reduce((sum, e) => sum + e.wt, 0) // wt is since the previous event
  assert.equal(wall, 20_000)
})

test('a ping every 30 s while playing, none while paused', (t) => {
  const { s, names } = session(t, 3600)
  s.play(0)
  playThrough(t, s, 0, 95)
  assert.equal(names('ping').length, 3)
  for (const p of names('ping')) assert.ok(Math.abs(p.wt - PING_MS) <= 250, p.wt)
  s.pause(95)
  t.mock.timers.tick(10 * PING_MS)
  assert.equal(names('ping').length, 3)
  s.play(95)
  t.mock.timers.tick(PING_MS)
  assert.equal(names('ping').length, 4)
})

test('pause and resume: one play per start, wall time only while playing', (t) => {
  const { s, events, names } = session(t, 3600)
  s.play(0)
  s.play(0) // a second play while playing is not one
  playThrough(t, s, 0, 10)
  s.pause(10)
  t.mock.timers.tick(60_000)
  s.pause(10)
  s.play(10)
  playThrough(t, s, 10, 15)
  s.pause(15)
  assert.deepEqual(names().map((e) => e.n), ['play', 'pause', 'play', 'pause'])
  const wall = events.reduce((sum, e) => sum + e.wt, 0)
  assert.equal(wall, 15_000)
  assert.equal(events.at(-1).ws, 15)
  assert.equal(new Set(events.map((e) => e.ms)).size, 1)
})

test('seconds played twice count once; pos is the whole second', (t) => {
  const { s, events } = session(t, 100)
  s.play(0)
  playThrough(t, s, 0, 10.6)
  s.seeking()
  s.seeked(5)
  playThrough(t, s, 5, 12)
  s.pause(12)
  assert.equal(events.at(-1).ws, 12)
  assert.equal(events.at(-1).pos, 12)
  assert.equal(events.find((e) => e.n == 'seek').pos, 5)
})

test('unknown duration: no progress, still seconds', (t) => {
  const { s, events, names } = session(t, NaN)
  s.play(0)
  playThrough(t, s, 0, 5)
  s.pause(5)
  assert.equal(names('progress').length, 0)
  assert.equal(events.at(-1).ws, 5)
})

test('each session has its own id', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 })
  const ids = new Set()
  for (let i = 0; i < 3; i++) player((n, x) => ids.add(x.ms), () => 10).play(0)
  assert.equal(ids.size, 3)
})

test('reading time counts only while on screen and visible, in 30 s reports', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 })
  const events = []
  const set = reader((n, x) => events.push({ n, ...x }))
  set(true)
  t.mock.timers.tick(PING_MS)
  assert.deepEqual(events.map((e) => [e.n, e.wt, e.ws]), [['read', PING_MS, 30]])
  t.mock.timers.tick(5000)
  set(false) // hidden: the 5 s go now
  t.mock.timers.tick(10 * PING_MS) // nothing while not read
  set(false)
  assert.deepEqual(events.map((e) => e.wt), [PING_MS, 5000])
  set(true)
  t.mock.timers.tick(400)
  set(false) // under a second: waits
  assert.equal(events.length, 2)
  set(true)
  t.mock.timers.tick(700)
  set(false)
  assert.deepEqual(events.at(-1), { n: 'read', ms: events[0].ms, ws: 36, wt: 1100 })
})
