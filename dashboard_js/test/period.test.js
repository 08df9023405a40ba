// node --test test/ : the dashboard's period arithmetic (src/period.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addMonths, localParts, resolvePeriod } from '../src/period.js'

const now = { date: '2026-03-31', time: '14:05:09' }

test('today is cut at now, and compared with yesterday and a year ago at the same time', () => {
  const p = resolvePeriod({ p: 'today' }, now)
  assert.deepEqual(p.current, { from: '2026-03-31T00:00:00', to: '2026-03-31T14:05:09' })
  assert.deepEqual(p.previous, { from: '2026-03-30T00:00:00', to: '2026-03-30T14:05:09' })
  assert.deepEqual(p.lastYear, { from: '2025-03-31T00:00:00', to: '2025-03-31T14:05:09' })
  assert.equal(p.g, 'hour')
})

test('seven days are compared with the seven before', () => {
  const p = resolvePeriod({}, now)
  assert.equal(p.p, '7d')
  assert.deepEqual(p.current, { from: '2026-03-25T00:00:00', to: '2026-03-31T14:05:09' })
  assert.deepEqual(p.previous, { from: '2026-03-18T00:00:00', to: '2026-03-24T14:05:09' })
  assert.equal(p.g, 'day')
})

test('last month is a whole calendar month, compared with the whole month before', () => {
  const p = resolvePeriod({ p: 'lastmonth' }, now)
  assert.deepEqual(p.current, { from: '2026-02-01T00:00:00', to: '2026-02-28T23:59:59' })
  assert.deepEqual(p.previous, { from: '2026-01-01T00:00:00', to: '2026-01-31T23:59:59' })
  assert.deepEqual(p.lastYear, { from: '2025-02-01T00:00:00', to: '2025-02-28T23:59:59' })
})

test("this month so far is compared with the same days of last month", () => {
  const p = resolvePeriod({ p: 'month' }, now)
  assert.deepEqual(p.current, { from: '2026-03-01T00:00:00', to: '2026-03-31T14:05:09' })
  assert.deepEqual(p.previous, { from: '2026-02-01T00:00:00', to: '2026-02-28T14:05:09' })
})

test("the seed report's month (8-21 to 9-20) as a custom period", () => {
  const p = resolvePeriod({ p: 'custom', from: '2017-08-21', to: '2017-09-20' }, now)
  assert.equal(p.days, 31)
  assert.deepEqual(p.current, { from: '2017-08-21T00:00:00', to: '2017-09-20T23:59:59' })
  assert.deepEqual(p.previous, { from: '2017-07-21T00:00:00', to: '2017-08-20T23:59:59' })
})

test('a bad custom period falls back to the last seven days; minutes only within a day', () => {
  for (const [from, to] of [['2026-02-30', '2026-03-01'], ['2026-03-05', '2026-03-01'], ['x', '2026-03-01']]) {
    assert.equal(resolvePeriod({ p: 'custom', from, to }, now).days, 7)
  }
  assert.equal(resolvePeriod({ p: '7d', g: 'minute' }, now).g, 'hour')
  assert.equal(resolvePeriod({ p: 'today', g: 'minute' }, now).g, 'minute')
  assert.equal(resolvePeriod({ p: 'custom', from: '2025-01-01', to: '2025-12-31' }, now).g, 'month')
})

test('months keep the day or end at the last one', () => {
  assert.equal(addMonths('2024-02-29', -12), '2023-02-28')
  assert.equal(addMonths('2026-01-31', 1), '2026-02-28')
  assert.equal(addMonths('2026-01-15', -1), '2025-12-15')
})

test("dates are the collector's time zone's", () => {
  assert.deepEqual(localParts(new Date('2026-11-29T18:30:00Z'), 'Asia/Shanghai'), { date: '2026-11-30', time: '02:30:00' })
})
