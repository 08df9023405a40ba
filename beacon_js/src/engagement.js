// Engaged time and scroll depth of the current page view.
//
// Time counts only while the page is visible AND focused: a background tab, a minimised
// window or another application in front add nothing. It is measured between state
// changes (no timers, no periodic heartbeat) and reported when the page view ends:
// the page is hidden, it is unloaded, or a single-page app moves to another route.
// A page that is hidden and shown again reports each visible stretch separately.
import { session } from './session.js'
import { now } from './util.js'

var total = 0 // ms engaged since the last report
var since = 0 // when `active` last changed or was last added up
var active = false
var depth = 0 // max scroll depth % since the page view started

// Adds up the time since the last call and re-reads visible-and-focused; `off`: the
// page is going away whatever it still says (pagehide may come before the page is
// hidden). Focus moved into an iframe of this page still counts (hasFocus() stays true).
export function update(off) {
  var t = now()
  var was = active
  if (was && t > since) total += t - since
  since = t
  active = !off && !document.hidden && document.hasFocus()
  // Becoming active checks whether the visit expired; ceasing to be extends it to now.
  if (active != was) session(0, was)
}

export function scrolled() {
  // An empty document (scrollHeight 0) makes NaN or Infinity: 0 and 100.
  depth = Math.max(depth, Math.min(100, Math.round((pageYOffset + innerHeight) / document.documentElement.scrollHeight * 100)) || 0)
}

// The engagement since the last report ({et, sd}); starts counting afresh. `off` as
// for update().
export function take(off) {
  update(off)
  scrolled()
  var out = { et: total, sd: depth }
  total = 0
  return out
}

// A new page view starts: forget the time and depth of the last one.
export function restart() {
  take()
  depth = 0
  scrolled()
}
