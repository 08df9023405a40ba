// Page URLs as we send them, and where we send them to. Pure functions.

// Query parameters dropped from every page URL and referrer before it leaves the page:
// single-sign-on tickets and tokens (CAS `ticket` is everywhere on education
// platforms), session ids, and our own DEBUG switch. The `strip` setting adds more
// names (matched exactly); `strip: '*'` drops the whole query string.
export var STRIP = ['ticket', 'token', 'access_token', 'sessionid', 'jsessionid', 'password', 'eb_debug']

// `href` (relative to `base`) with the stripped parameters removed, and without its
// #fragment unless `keepHash` (hash-routed single-page apps). The query is re-encoded
// only when a parameter was actually removed, so other URLs reach the collector byte
// for byte.
export function cleanUrl(href, strip, keepHash, base) {
  if (!href) return ''
  var url = new URL(href, base)
  var params = url.searchParams
  if (strip == '*') url.search = ''
  else STRIP.concat(strip || []).forEach(function (name) {
    if (params.has(name)) params['delete'](name)
  })
  // Java portals put the session id in the path: /index.jsp;jsessionid=ABC?x=1
  url.pathname = url.pathname.replace(/;jsessionid=[^/]*/i, '')
  if (!keepHash) url.hash = ''
  return url.href
}

// The collector's hit endpoint. `host` is the `host` setting (the standard's
// `aplus-rhost-v`): a bare host such as `qtedu.om.moe.edu.cn` takes the scheme the
// beacon itself was loaded with; a full URL may add a path prefix. Without `host`
// the endpoint sits next to the script: https://collector/x/beacon.js -> /x/c.
export function endpoint(host, scriptSrc) {
  return new URL(host ? (/\/\//.test(host) ? host : '//' + host).replace(/\/*$/, '/c') : 'c', scriptSrc).href
}
