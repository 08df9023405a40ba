// The deep tag's modules, wired into the shared code (core.js `hook`, the command
// table). Imported by full.js only, before basic.js reads the command queues.
import { clip, safe } from './util.js'
import { commands, hook, flush } from './core.js'
import { KEYS } from './aplus.js'
import { props } from './fields.js'
import { click, entered } from './clicks.js'
import { newView, shown, startTracks } from './tracks.js'
import { sessions, startMedia } from './players.js'
import './interactions.js'

// The standard's auto-click configuration is our `clicks` setting.
KEYS['aplus-auto-clk'] = 'clicks'

// The user id (appendix A's `_user_id`, our `userId`, or setUser(id); setUser() or an
// empty id on logout clears it): what is waiting in the batch goes first, with the user
// it happened to, and the id goes as a string of at most 128 characters.
var set = commands.set
commands.set = function (key, v) {
  if ((KEYS[key] || key) == 'userId') {
    flush()
    v = clip(v, 128)
  }
  set(key, v)
}
commands.setUser = function (id) {
  commands.set('userId', id)
}

// record() properties cut to the protocol's limits instead of getting the event rejected.
var record = commands.record
commands.record = function (n, t, p) {
  record(n, t, props(p))
}

hook.emit = function (e) {
  if (e.t == 'pageview') {
    var x = entered()
    for (var k in x) e[k] = x[k]
    newView()
  }
}

hook.start = function () {
  var d = document
  // Leaving, or hidden (mobile browsers may discard a hidden page without pagehide):
  // what was played and read since the last report goes now. A playing video or audio
  // goes on playing in a background tab; reading stops until the page is shown again.
  var leave = safe(function () {
    sessions.forEach(function (s) { s.leave() })
    shown(1)
    flush(1)
  })
  ;['click', 'auxclick'].forEach(function (type) { d.addEventListener(type, safe(click), true) })
  startMedia()
  startTracks()
  d.addEventListener('visibilitychange', function () {
    d.hidden ? leave() : shown()
  })
  addEventListener('pagehide', leave)
}
