// Page views: the automatic one on load, single-page-app routes, back/forward cache
// restores, the `pageview` command; and the end of each page view (engagement).
import { cfg, log, safe, on, clip } from './util.js'
import { commands, emit, flush } from './core.js'
import { cleanUrl } from './url.js'
import { debounce } from './debounce.js'
import { update, scrolled, take, restart } from './engagement.js'

// Routers often push a URL and replace it a moment later, or redirect at once; the
// route is read once the burst has settled, which also gives them time to set the
// new title.
export var ROUTE_SETTLE_MS = 200

var d = document
var current // the last page view sent: {u, pc}

// A URL as we send it: cleaned, and cut to the protocol's 2048 characters.
function url(href) {
  return clip(cleanUrl(href, cfg.strip, cfg.hash, location.href), 2048)
}

function hidden() {
  return d.hidden || d.prerendering  // hidden: visibilityState 'hidden'
}

// pageview({url, title, referrer, pageCode}, props), everything optional (also
// aplus.sendPV(config, props)). Waits until the page is visible and not prerendering:
// a tab opened in the background is counted when first looked at, never if it never is.
function pageview(o, props) {
  var done
  var go = safe(function () {
    if (done || hidden()) return
    done = 1
    o = o || {}
    var u = url(o.url || location.href)
    var meta = d.querySelector('meta[name="eb-page-code"]')
    var pc = clip(o.pageCode || cfg.pageCode || (meta && meta.content), 128)
    restart()
    emit('pageview', {
      u: u,
      // After the first page view of a single-page app, the referrer is the last route.
      r: url(o.referrer || (current ? current.u : d.referrer)),
      pc: pc,
      ti: clip(o.title || d.title, 512),
      cs: d.characterSet,
      lang: navigator.language,
      sw: screen.width,
      sh: screen.height,
      tp: navigator.maxTouchPoints,
      p: props
    })
    current = { u: u, pc: pc }
  })
  if (hidden()) {
    DEBUG && log('page view waits until shown', o)
    on(d, 'visibilitychange', go)
    on(d, 'prerenderingchange', go)
  }
  go()
}
commands.pageview = pageview

// Reports the engagement of the current page view. A leaving page sends the batch at
// once; on a route change it goes with the next page view.
function end(leaving) {
  if (!current) return
  var g = take(leaving)
  if (g.et > 0) emit('engagement', { u: current.u, pc: current.pc, et: g.et, sd: g.sd })
  if (leaving) flush(1)
}

export function start() {
  var w = window

  // A route counts when the URL we would send changes (query and, with the `hash`
  // setting, fragment included): a replaceState to the same URL does not.
  var route = debounce(safe(function () {
    if (!cfg.manual && current && url(location.href) != current.u) {
      end()
      pageview()
    }
  }), ROUTE_SETTLE_MS)
  ;['pushState', 'replaceState'].forEach(function (name) {
    var original = history[name]
    history[name] = function () {
      var result = original.apply(this, arguments)
      route()
      return result
    }
  })
  on(w, 'popstate', route)
  // Without the `hash` setting the fragment is not part of the URL: no page view.
  on(w, 'hashchange', route)

  on(d, 'visibilitychange', function () {
    update()
    if (hidden()) end(1)
  })
  on(w, 'pagehide', function () { end(1) })
  // A page restored from the back/forward cache is a new page view.
  on(w, 'pageshow', function (e) { if (e.persisted && !cfg.manual) pageview() })
  on(w, 'focus', update)
  // When focus moves into an iframe of the page, hasFocus() is true only after the blur.
  on(w, 'blur', function () { setTimeout(safe(update)) })
  on(w, 'scroll', scrolled)
  update()

  if (!cfg.manual) pageview()
  else DEBUG && log('manual page views')
}
