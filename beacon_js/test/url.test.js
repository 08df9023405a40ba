import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cleanUrl, endpoint, STRIP } from '../src/url.js'

test('default parameters are stripped, others kept in order', () => {
  assert.equal(
    cleanUrl('https://x.edu.cn/course?id=7&ticket=ST-1-abc&page=2&token=t'),
    'https://x.edu.cn/course?id=7&page=2'
  )
  for (const name of STRIP) assert.equal(cleanUrl(`https://x.cn/?${name}=1`), 'https://x.cn/')
})

test('a URL without stripped parameters is not re-encoded', () => {
  const href = 'https://x.edu.cn/search?q=%E6%95%B0%E5%AD%A6&sort=a%20b&x=y+z'
  assert.equal(cleanUrl(href), href)
})

test('the strip setting adds names; * drops the whole query', () => {
  assert.equal(cleanUrl('https://x.cn/a?utm_source=w&id=1', ['utm_source']), 'https://x.cn/a?id=1')
  assert.equal(cleanUrl('https://x.cn/a?utm_source=w&id=1', '*'), 'https://x.cn/a')
})

test('the fragment goes unless kept (hash routing)', () => {
  assert.equal(cleanUrl('https://x.cn/a?id=1#access_token=secret'), 'https://x.cn/a?id=1')
  assert.equal(cleanUrl('https://x.cn/#/course/7?ticket=1', null, true), 'https://x.cn/#/course/7?ticket=1')
})

test('a jsessionid path parameter goes', () => {
  assert.equal(cleanUrl('https://x.cn/index.jsp;jsessionid=ABC123?x=1'), 'https://x.cn/index.jsp?x=1')
  assert.equal(cleanUrl('https://x.cn/a;JSESSIONID=ABC/b'), 'https://x.cn/a/b')
})

test('a relative URL is resolved against the page', () => {
  assert.equal(cleanUrl('/course/7?token=x', null, false, 'https://x.cn/a/b?c'), 'https://x.cn/course/7')
})

test('an empty referrer stays empty', () => {
  assert.equal(cleanUrl(''), '')
})

test('endpoint: next to the script without a host', () => {
  assert.equal(endpoint(undefined, 'https://c.example.cn/beacon.js'), 'https://c.example.cn/c')
  assert.equal(endpoint('', 'https://c.example.cn/stats/beacon-1.2.3.js?x'), 'https://c.example.cn/stats/c')
})

test('endpoint: a bare host (aplus-rhost-v) takes the script scheme', () => {
  assert.equal(endpoint('qtedu.om.moe.edu.cn', 'https://cdn.cn/beacon.js'), 'https://qtedu.om.moe.edu.cn/c')
  assert.equal(endpoint('127.0.0.1:8080', 'http://127.0.0.1:9/beacon.js'), 'http://127.0.0.1:8080/c')
})

test('endpoint: a full URL keeps its scheme and path prefix', () => {
  assert.equal(endpoint('http://collector.lan:8080/', 'https://cdn.cn/beacon.js'), 'http://collector.lan:8080/c')
  assert.equal(endpoint('https://x.cn/analytics', 'http://a/b.js'), 'https://x.cn/analytics/c')
  assert.equal(endpoint('//x.cn', 'http://a/b.js'), 'http://x.cn/c')
})
