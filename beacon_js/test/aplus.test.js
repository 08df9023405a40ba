import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ACTIONS, KEYS, TYPES, value } from '../src/aplus.js'

test('appendix-A meta-info keys map onto our settings', () => {
  assert.equal(KEYS['aplus-rhost-v'], 'host')
  assert.equal(KEYS.DEBUG, 'debug')
  assert.equal(KEYS['aplus-waiting'], 'manual')
  assert.equal(KEYS._user_id, 'userId')
  assert.equal(KEYS._hold, 'hold')
  assert.equal(KEYS.appKey, undefined, 'appKey keeps its name')
})

test('aplus values: MAN and BLOCK switch manual/hold on, START off, others pass', () => {
  assert.equal(value('manual', 'MAN'), true)
  assert.equal(value('hold', 'BLOCK'), true)
  assert.equal(value('hold', 'START'), false)
  assert.equal(value('hold', true), true)
  assert.equal(value('manual', false), false)
  assert.equal(value('host', 'qtedu.om.moe.edu.cn'), 'qtedu.om.moe.edu.cn')
  assert.deepEqual(value('strip', ['utm_source']), ['utm_source'])
})

test('aplus values: only manual and hold are switches, a user id is never one', () => {
  for (var id of ['MAN', 'BLOCK', 'START']) assert.equal(value('userId', id), id)
  assert.equal(value('appKey', 'START'), 'START')
})

test('aplus.record types become protocol types', () => {
  assert.deepEqual(TYPES, { CLK: 'click', EXP: 'exposure', OTHER: 'custom' })
  assert.deepEqual(ACTIONS, { setMetaInfo: 'set', sendPV: 'pageview' })
})
