// Getting events to the collector, and keeping them when that fails.
//
// Every request is a CORS "simple request" (a text/plain JSON body, or an <img> GET),
// so the browser never sends a preflight. The order of attempts:
//
// 1. The page is leaving (hidden, pagehide): navigator.sendBeacon, the one transport
//    the browser promises to deliver after the page is gone.
// 2. Otherwise fetch with keepalive, because it is the one transport that tells
//    whether the hit arrived, so that a failure can be kept for later. Only the
//    browser's own fetch is used: a host page may have replaced window.fetch with
//    something that does not work for us.
// 3. When those are missing or refuse: sendBeacon, then one 1x1 <img> GET per event
//    (a page whose Content-Security-Policy forbids connect-src usually allows images).
//
// Network errors, 5xx and 429 (rate limited: nothing of the request was counted) put the
// events in a small localStorage queue that the next page load replays. Other answers
// are final (the protocol: never retry a 400 or 413, the collector has counted what it
// could). An event sent again — replayed from the
// queue, or by <img> after a fetch that failed — keeps its `id` and carries `re: 1`
// (queue.js; images() marks every event it sends): its first send may have been
// counted with only the answer lost, and the collector counts it once (docs/protocol.md).
import { cfg, log, load, save, safe, now } from './util.js'
import { endpoint } from './url.js'
import { enqueue, MAX_BODY } from './queue.js'

// Our own <script> element, known only while it first runs.
export var script = document.currentScript || {}

// Whether the last send was for a page being left (hidden or unloaded).
var left

// Called on every flush, even of nothing: `leaving` must be known when a fetch fails.
export function send(events, leaving) {
  left = leaving
  if (!events.length) return
  var url = endpoint(cfg.host, script.src || location.href)
  var body = JSON.stringify(events)
  var fetch = window.fetch
  var half = events.length >> 1
  // Too big for one request (3 bytes of UTF-8 at most per UTF-16 unit)? Halves.
  if (body.length * 3 > MAX_BODY && half) return send(events.slice(0, half), leaving), send(events.slice(half), leaving)
  if (navigator.onLine === false) return keep(events, DEBUG && 'offline')
  DEBUG && log('send to ' + url, events)
  if (leaving && beacon(url, body)) return
  try {
    if (/\[native code\]/.test(fetch)) {
      return fetch(url, { method: 'POST', body: body, keepalive: true }).then(safe(function (answer) {
        if (/^5|429/.test(answer.status)) keep(events, DEBUG && answer.status) // 5xx or 429
        else if (DEBUG && answer.status > 299) answer.text().then(function (why) { log('rejected: ' + why, events) })
      }), safe(function () {
        // A page left while this was in flight (Chromium aborts the fetch on a reload,
        // before the page is hidden) sees it fail although the browser still delivers it
        // (keepalive): sending it again would count the events twice.
        DEBUG && log('fetch failed', events)
        left || images(url, events)
      }))
    }
  } catch (e) {}
  if (leaving || !beacon(url, body)) images(url, events)
}

function beacon(url, body) {
  try { return navigator.sendBeacon(url, body) } catch (e) {}
}

function images(url, events) {
  events.forEach(function (e) {
    // Marked as maybe sent before (re=1): an <img> cannot tell whether it arrived, and
    // after a failed fetch it may have. The collector counts it once by its id all the same.
    e.re = 1
    var query = new URLSearchParams(e)
    var img = new Image()
    if (e.p) query.set('p', JSON.stringify(e.p))
    img.onerror = safe(function () { keep([e], DEBUG && 'unreachable') })
    img.src = url + '?img=1&' + query
  })
}

function keep(events, reason) {
  DEBUG && log('kept for later: ' + reason, events)
  save('q', enqueue(load('q'), events, now()))
}

// Sends what earlier pages could not. The queue is emptied first, so two tabs opening
// at once do not both send it; what fails again goes back in.
export function replay() {
  var queue = load('q')
  // (An empty queue needs no test of its own: send() sends nothing of it.)
  if (queue) {
    save('q')
    DEBUG && log('replay', queue)
    send(queue)
  }
}
