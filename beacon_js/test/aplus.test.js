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

test('aplus values: MAN and BLOCK switch on, START off, others pass', () => {
  assert.equal(value('MAN'), true)
  assert.equal(value('BLOCK'), true)
  assert.equal(value('START'), false)
  assert.equal(value(true), true)
  assert.equal(value(false), false)
  assert.equal(value('qtedu.om.moe.edu.cn'), 'qtedu.om.moe.edu.cn')
  assert.deepEqual(value(['utm_source']), ['utm_source'])
})

test('aplus.record types become protocol types', () => {
  assert.deepEqual(TYPES, { CLK: 'click', EXP: 'exposure', OTHER: 'custom' })
  assert.deepEqual(ACTIONS, { setMetaInfo: 'set', sendPV: 'pageview' })
})
