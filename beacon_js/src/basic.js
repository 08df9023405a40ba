// Entry point of the basic tag (JY/T §7.1.2): page views, visits, engagement.
// The full build (deep tag) is src/full.js: its own modules, then this.
import { cfg, log, logReady, load, save } from './util.js'
import { run, hook } from './core.js'
import { replay, script } from './transport.js'
import { start } from './page.js'

// Our queue, then the standard's: a page carries one or the other (or both).
var QUEUES = ['eb_queue', 'aplus_queue']

;(function (w) {
  try {
    // ?eb_debug=1 switches DEBUG on in this browser until ?eb_debug=0.
    var m = /[?&]eb_debug=([01])/.exec(location.search)
    if (m) save('debug', m[1] == '1' || null)

    // beacon.js carries no log lines (they would cost every visitor ~10% more bytes).
    // With DEBUG on, it loads beacon.debug.js from next to itself instead, which reads
    // the queues as they are. Not when the page pins beacon.js with SRI: that page
    // trusts these bytes only.
    if (!DEBUG && !script.integrity && (load('debug') || /"debug"[,:]true/i.test(JSON.stringify([w.eb_queue, w.aplus_queue])))) {
      var debug = document.createElement('script')
      debug.src = script.src.replace(/[^/]*$/, FULL ? 'beacon.full.debug.js' : 'beacon.debug.js')
      return script.parentNode.insertBefore(debug, script)
    }

    // Loaded twice? The first copy serves both queues. Browsers without URL (IE) are
    // not counted at all rather than counted wrong.
    if (w.__edu_beacon || !w.URL) return
    w.__edu_beacon = 1

    QUEUES.forEach(function (name) {
      var queue = (w[name] = w[name] || [])
      var pending = queue.splice(0)
      // From now on a push runs at once (also a push made by a running command).
      queue.push = function () {
        ;[].forEach.call(arguments, run)
        return 0
      }
      pending.forEach(run)
    })
    // The remembered switch wins over a page's DEBUG false: that is what it is for.
    if (DEBUG) {
      if (load('debug')) cfg.debug = 1
      logReady()
      log('edu-beacon ' + __VERSION__ + ', settings', cfg)
    }
    replay()
    start()
    if (FULL) hook.start()
  } catch (e) {
    DEBUG && log('failed to start: ' + e)
  }
})(window)
