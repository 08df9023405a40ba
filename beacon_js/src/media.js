// Media policies: what a playing video or audio, or a document being read, reports.
// No DOM here (players.js feeds it), so the unit tests drive it with a fake clock.
//
// A play session (`ms`) is one resource loaded once in a page view. It reports:
//   play, pause, seek, ended  as they happen (a second `play` while playing is not one);
//   progress                  once per boundary of BOUNDS, when the distinct seconds
//                             watched reach that share of the duration;
//   ping                      every PING_MS while playing (and when the page is left).
// Every event carries `ws`, the distinct content seconds played so far in the session
// (cumulative: the collector keeps the largest per session), and `wt`, the wall-clock
// ms spent playing since the session's previous event (the collector adds them up).
//
// Distinct seconds: content second k counts once its middle (k + 0.5) has been played
// through, and only on a continuous stretch of playback: between two position reports
// the position must have advanced by at most the wall-clock time elapsed times the
// playback rate, plus a second. A seek, or a position that jumps, starts a new stretch
// without counting what was skipped, so seeking to the end cannot fake completion, and
// playing a part twice counts it once.
import { now, rid, safe } from './util.js'

export var PING_MS = 30000
export var BOUNDS = [10, 25, 50, 75, 90, 100]

// send(name, fields) emits one event; dur() is the duration in seconds (NaN unknown).
export function player(send, dur) {
  var seen = {}
  var done = {}
  var ms = rid()
  var ws = 0 // distinct seconds played
  var wt = 0 // ms played since the last event
  var since = 0 // when wt was last added to; 0 while not playing
  var at = 0 // last known position, s
  var atT = 0 // when it was known
  var jump // a seek began: the next position starts a new stretch
  var timer

  function fire(n, x) {
    var t = now()
    if (since) wt += t - since, (since = t)
    x = x || {}
    x.ms = ms
    x.pos = Math.floor(at)
    x.ws = ws
    x.wt = wt
    wt = 0
    send(n, x)
  }

  var s = {
    // The position `pos` (s) at the playback rate `rate`: counts the seconds played
    // through since the last position, then the boundaries reached.
    timeupdate: function (pos, rate) {
      var t = now()
      var d = Math.round(dur())
      var k
      pos = +pos || 0
      if (since && !jump && pos > at && pos - at <= ((t - atT) / 1000) * (rate || 1) + 1) {
        for (k = Math.ceil(at - 0.5); k + 0.5 < pos; k++) if (!seen[k]) seen[k] = ++ws
      }
      at = pos
      atT = t
      jump = 0
      BOUNDS.forEach(function (b) {
        if (!done[b] && d > 0 && ws * 100 >= b * d) {
          done[b] = 1
          fire('progress', { pb: b })
        }
      })
    },
    play: function (pos) {
      if (since) return
      at = +pos || 0
      atT = now()
      fire('play')
      since = atT
      timer = setInterval(safe(function () { fire('ping') }), PING_MS)
    },
    pause: function (pos) {
      if (!since) return
      s.timeupdate(pos)
      fire('pause')
      since = 0
      clearInterval(timer)
    },
    seeking: function () {
      jump = 1
    },
    seeked: function (pos) {
      at = +pos || 0
      atT = now()
      jump = 0
      fire('seek')
    },
    ended: function (pos) {
      s.pause(pos)
      fire('ended')
    },
    // The page is being left: what was played since the last event goes now.
    leave: function () {
      if (since) fire('ping')
    }
  }
  return s
}

// Reading an e-textbook or a document: time counts while it is on screen and the page
// is visible. Reports `read` every PING_MS while reading, and when reading stops with at
// least a second not yet reported (less waits for the next time). `ws` is the whole
// seconds read in the session so far, `wt` the ms read since the last report.
// Returns set(reading).
export function reader(send) {
  var ms = rid()
  var on = 0
  var wt = 0
  var all = 0
  var timer

  function add() {
    var t = now()
    if (on) wt += t - on, (all += t - on), (on = t)
  }
  function out() {
    if (wt >= 1000) send('read', { ms: ms, ws: Math.floor(all / 1000), wt: wt }), (wt = 0)
  }
  return function (reading) {
    add()
    if (reading && !on) {
      on = now()
      timer = setInterval(safe(function () { add(); out() }), PING_MS)
    } else if (!reading && on) {
      on = 0
      clearInterval(timer)
      out()
    }
  }
}
