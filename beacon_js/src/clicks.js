// Clicks (JY/T table 3 #6, #7) and entry attribution.
//
// One listener on the document, in the capture phase (a page's own handler that stops
// propagation cannot hide a click from it), for click and middle-button auxclick. A
// click counts when it lands in
//   - an element with data-eb-click="NAME" (properties: data-eb-p='{"k":"v"}'),
//   - an element matching a configured selector (the `clicks` setting, or the
//     standard's `aplus-auto-clk`): [{selector | cssSelector, name | logkey, props}],
//   - an item of a click track (tracks.js): then it also carries tr and pos.
// A link that navigates away is no problem: the click waits in the batch, which goes
// with sendBeacon when the page is left.
//
// Entry attribution: a plain click (no modifier key, not a new tab) on a track item
// stamps the next page view of this tab, within ENTRY_MS, with the item's track and
// position (etr, epos), also across a full navigation (sessionStorage).
import { cfg, now, clip } from './util.js'
import { emit } from './core.js'
import { props, json } from './fields.js'
import { item, name } from './tracks.js'

export var ENTRY_MS = 60000

// The stored entry (sessionStorage is per tab) replaced by `v` (none: removed).
function entry(v) {
  try {
    var s = sessionStorage
    var old = json(s.getItem('eb_entry'))
    if (v) s.setItem('eb_entry', JSON.stringify(v))
    else s.removeItem('eb_entry')
    return old
  } catch (e) {}
}

// The entry a page view came through, {etr, epos}, used up; none when stale.
export function entered() {
  var e = entry()
  if (e && now() - e[2] < ENTRY_MS) return { etr: e[0], epos: e[1] }
}

export function click(e) {
  var t = e.target
  var el, n, p, it, a, c
  if (!t.closest || (e.type == 'auxclick' && e.button != 1)) return
  c = cfg.clicks || []
  if (typeof c == 'string') c = json(c) || []
  c.some(function (rule) {
    el = t.closest(rule.selector || rule.cssSelector)
    return el && ((n = rule.name || rule.logkey), (p = rule.props))
  })
  a = t.closest('[data-eb-click]')
  if (a) {
    el = a
    n = a.getAttribute('data-eb-click')
    p = json(a.getAttribute('data-eb-p'))
  }
  it = item(t)
  if (!el && !it) return
  a = t.closest('a')
  if (it && e.type == 'click' && !(e.ctrlKey || e.metaKey || e.shiftKey || (a && a.target == '_blank'))) {
    entry([it.tr, it.pos, now()])
  }
  emit('click', { n: clip(n, 128) || (it ? it.n : name(el)), tr: it && it.tr, pos: it && it.pos, p: props(p) })
}
