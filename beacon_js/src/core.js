// Commands, events and batches: what every build (basic, later full) shares.
import { cfg, log, load, save, rid, now, clip } from './util.js'
import { session } from './session.js'
import { send } from './transport.js'
import { ACTIONS, KEYS, TYPES, value } from './aplus.js'

// A batch this long goes at once: one request instead of ten.
export var FLUSH_EVENTS = 10
// Other events wait this long for company. Page views never wait.
export var FLUSH_MS = 3000

var buffer = []
var timer

// Where the full build's modules plug in (see full.js): `emit(e)` sees every event
// before it is batched (the deep tag stamps entry attribution on page views), `start()`
// runs once the queues have been read and page views started. `FULL` is a build
// constant: in the basic build every use of this object disappears.
export var hook = {}

// Command name -> function(arguments...). page.js adds pageview.
export var commands = {
  // set(key, value); also aplus.setMetaInfo.
  set: function (key, v) {
    key = KEYS[key] || key
    cfg[key] = value(key, v)
    if (key == 'hold' && !cfg.hold) flush()
    if (key == 'vid' && v === false) save('v')
  },

  // record(name, type, props): type is a protocol type (click, exposure, media,
  // interaction, custom) or aplus's CLK / EXP / OTHER; custom when absent. `props` go
  // as given: ones that break the protocol's limits get the event rejected (the debug
  // build shows the collector's answer; the full build will cut them to size).
  record: function (name, type, props) {
    emit(TYPES[type] || type || 'custom', { n: clip(name, 128), p: props })
  },

  // optOut() keeps this browser from being counted (on this origin) until optOut(false).
  optOut: function (on) {
    save('optout', on === false ? null : 1)
  }
}

// Runs one pushed command ({action, arguments}); a bad one is skipped (DEBUG says why).
export function run(command) {
  try {
    var name = command.action.replace('aplus.', '')
    var args = command.arguments
    DEBUG && log('> ' + command.action, args)
    commands[ACTIONS[name] || name].apply(0, [].concat(args))
  } catch (e) {
    DEBUG && log('bad command: ' + e, command)
  }
}

// Adds an event of type `t` with `fields` to the batch, unless this browser may not
// be counted.
export function emit(t, fields) {
  var n = navigator
  if (load('optout')) return DEBUG && log('not counted: opted out', fields)
  if (cfg.dnt && (n.doNotTrack == '1' || n.globalPrivacyControl)) return DEBUG && log('not counted: Do-Not-Track/GPC', fields)
  var s = session(t == 'pageview')
  var e = { t: t, ts: now(), id: rid(), sid: s.i }
  var v = cfg.vid !== false && (load('v') || rid())
  if (v) save('v', (e.vid = v))
  if (t == 'pageview') e.sn = s.n
  for (var k in fields) if (fields[k] != null && fields[k] !== '') e[k] = fields[k]
  if (FULL) hook.emit(e)
  buffer.push(e)
  if (t == 'pageview' || buffer.length >= FLUSH_EVENTS) flush()
  else timer = timer || setTimeout(flush, FLUSH_MS)
}

// Sends the batch. `leaving`: the page is being hidden or unloaded.
export function flush(leaving) {
  var events = buffer
  clearTimeout(timer)
  timer = 0
  if (cfg.hold && !leaving) return DEBUG && events.length && log('held', events)
  buffer = []
  if (!cfg.appKey) return DEBUG && events.length && log('not sent: no appKey', events)
  // The app key and user id are stamped now, not when the event was made, so a page
  // that holds its hits until it knows the user sends them with the user.
  events.forEach(function (e) {
    e.k = cfg.appKey
    if (cfg.userId) e.uid = cfg.userId
  })
  send(events, leaving)
}
