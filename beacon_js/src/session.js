// Visits: a session id shared by the tabs of one browser, and the ordinal of each page
// view in it (`sn`: 1 starts a visit, 2 means the visit did not bounce).
import { load, save, rid, now } from './util.js'

// A visit ends after 30 minutes without activity: the usual web-analytics definition,
// and the collector's own `session_timeout` for hits that carry no session.
export var TIMEOUT = 30 * 60 * 1000

// The session `s` after activity at time `t`. `pageview` counts a page view; `alive`
// says the page was visible and focused all the time since the last activity, which
// keeps the visit going however long that was (a 45-minute lecture video is one visit).
export function touch(s, t, pageview, alive) {
  if (!s || (!alive && t - s.t > TIMEOUT)) s = { i: rid(), n: 0 }
  if (pageview) s.n++
  s.t = t
  return s
}

// The stored session after activity now.
export function session(pageview, alive) {
  var s = touch(load('s'), now(), pageview, alive)
  save('s', s)
  return s
}
