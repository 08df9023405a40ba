// Media on the page: every <video> and <audio> (found by listening on the document in
// the capture phase: media events do not bubble, but they do pass the document on the
// way down, so players added later need no scanning), custom players through the
// `media` command, and e-textbooks and documents being read (exposure.js tells us when
// they are on screen).
import { safe } from './util.js'
import { commands, emit } from './core.js'
import { int, resource } from './fields.js'
import { player, reader } from './media.js'

// Sessions of custom players (the `media` command with an event name), by resource id.
var custom = {}
// Every play session, to report their last seconds when the page is left.
export var sessions = []

function data(el, name) {
  return el && el.getAttribute('data-eb-' + name)
}

// Sends one media event of `el` (an element, or a custom player's state) with its
// resource fields: from the `media` command's object, else data-eb-* attributes on the
// element or its nearest ancestor with data-eb-rid, else the element itself (the source
// URL without its query as id, the tag name as type, its duration). No id, no event.
export function send(el, meta, n, x) {
  var m = meta || {}
  var d = el.closest && el.closest('[data-eb-rid]')
  var f = resource(function (k) {
    return m[k] || data(d, k) || data(el.getAttribute && el, k) ||
      (k == 'rid' ? (el.currentSrc || '').split(/[?#]/)[0].slice(-128) : k == 'rt' && el.tagName && el.tagName.toLowerCase())
  })
  f.n = n
  f.dur = int(m.dur || el.duration || data(d, 'dur'))
  for (var k in x) f[k] = x[k]
  if (f.rid) emit('media', f)
}

// Feeds the media event `type` (play, pause, seeking, seeked, timeupdate, ended,
// emptied: the HTMLMediaElement event names) at position `pos` to the session of `el`.
// `emptied` (the element loads another source) ends the session.
function feed(el, type, pos, rate, meta) {
  var s = el.__ebs
  if (!s) {
    if (type == 'emptied') return
    s = el.__ebs = player(function (n, x) { send(el, el.__ebm || meta, n, x) }, function () {
      return (el.__ebm || meta || {}).dur || el.duration
    })
    sessions.push(s)
  }
  if (type == 'emptied') {
    s.pause(pos)
    el.__ebs = 0
  } else s[type](pos, rate)
}

// media(element, meta): an element the document listener cannot see (inside a shadow
//   root) or whose resource fields come from script: {rid, rt, subj, stage, src, dur}.
// media(type, pos, meta): a player without a media element reports its own events,
//   named as the HTMLMediaElement ones (play, pause, seeking, seeked, timeupdate at least
//   once a second while playing, ended, emptied); meta.rid tells its sessions apart.
commands.media = function (target, pos, meta) {
  if (target.nodeType) {
    target.__ebm = pos
    if (!target.__ebl) {
      target.__ebl = 1
      TYPES.forEach(function (type) { target.addEventListener(type, listener) })
    }
  } else feed(custom[meta.rid] = custom[meta.rid] || {}, target, pos, 1, meta)
}

var TYPES = ['play', 'pause', 'seeking', 'seeked', 'timeupdate', 'ended', 'emptied']

var listener = safe(function (e) {
  var el = e.target
  // Reached the document and also the element itself (shadow DOM via the command): once.
  if (el.currentTime >= 0 && e.__eb != 1) {
    e.__eb = 1
    feed(el, e.type, el.currentTime, el.playbackRate)
  }
})

export function startMedia() {
  TYPES.forEach(function (type) { document.addEventListener(type, listener, true) })
}

// The reading state of a textbook or document element, made when first seen.
export function reading(el) {
  return el.__ebr = el.__ebr || reader(function (n, x) { send(el, 0, n, x) })
}
