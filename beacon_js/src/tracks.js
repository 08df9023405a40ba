// Click tracks (JY/T table 3 #7): components such as a navigation bar, a carousel, a
// list or a banner carry data-eb-track="ID"; their items carry data-eb-pos="N" (their
// position; empty: the item's place among the component's items, from 1) and may name
// themselves with data-eb-item (else their text). Each item reports an exposure once
// per page view when it has been at least `expRatio` (0.5) visible for `expMs` (300)
// ms. A carousel's slides are items like any other: the slides not shown are outside
// the carousel's clipped box, display:none, invisible or transparent, so each slide
// counts when it becomes the active one. Items added later (lazy lists, re-rendered
// components) are found by a MutationObserver.
import { cfg, safe, clip } from './util.js'
import { emit } from './core.js'
import { int } from './fields.js'
import { reading } from './players.js'

// Elements followed by the IntersectionObserver: track items, and textbooks and
// documents (visible reading time).
var WATCHED = '[data-eb-pos],[data-eb-rt=textbook],[data-eb-rt=document]'

var io
var watched = []
var seen = {} // exposures sent in this page view, by track|pos|name

// The track item `el` is in, as {tr, pos, n, el}; undefined outside tracked components.
export function item(el) {
  var it = el.closest('[data-eb-pos]')
  var tr = it && it.closest('[data-eb-track]')
  if (tr) {
    return {
      tr: clip(tr.getAttribute('data-eb-track'), 64),
      pos: int(it.getAttribute('data-eb-pos')) || [].indexOf.call(tr.querySelectorAll('[data-eb-pos]'), it) + 1,
      n: name(it)
    }
  }
}

// What an element is called: data-eb-item, else its text, else its tag.
export function name(el) {
  return clip(el.getAttribute('data-eb-item') || el.textContent.trim().replace(/\s+/g, ' ') || el.tagName, 128)
}

function visible(el) {
  var s = getComputedStyle(el)
  return !document.hidden && s.visibility != 'hidden' && s.opacity > 0.1
}

function observed(entries) {
  entries.forEach(function (x) {
    var el = x.target
    var on = x.isIntersecting && x.intersectionRatio >= ratio()
    clearTimeout(el.__ebt)
    if (el.__ebr) reading(el)((el.__ebv = on) && !document.hidden)
    else if (on) {
      el.__ebt = setTimeout(safe(function check() {
        var it = item(el)
        var key = it && [it.tr, it.pos, it.n].join('|')
        // Hidden tab, or a slide that is there but transparent: looks again later.
        if (!visible(el)) el.__ebt = setTimeout(safe(check), cfg.expMs || 300)
        else if (it && !seen[key]) {
          seen[key] = 1
          emit('exposure', it)
        }
      }), cfg.expMs || 300)
    }
  })
}

function ratio() {
  return cfg.expRatio >= 0 ? cfg.expRatio : 0.5
}

// Follows the elements not yet followed.
export function scan() {
  if (io) [].forEach.call(document.querySelectorAll(WATCHED), function (el) {
    if (!el.__ebo) {
      el.__ebo = 1
      if (/^(textbook|document)$/.test(el.getAttribute('data-eb-rt'))) reading(el)
      watched.push(el)
      io.observe(el)
    }
  })
}

// A new page view: every item may be exposed again; forgets removed elements.
export function newView() {
  seen = {}
  watched = watched.filter(function (el) {
    if (el.isConnected) return io.unobserve(el), io.observe(el), 1
  })
}

// The page was hidden or shown (`off`: is being left): reading stops or starts again.
export function shown(off) {
  watched.forEach(function (el) {
    if (el.__ebr) el.__ebr(!off && el.__ebv && !document.hidden)
  })
}

export function startTracks() {
  var timer
  if (!window.IntersectionObserver) return
  io = new IntersectionObserver(safe(observed), { threshold: ratio() })
  scan()
  new MutationObserver(function () {
    timer = timer || setTimeout(safe(function () { timer = 0; scan() }), 100)
  }).observe(document.documentElement, { childList: true, subtree: true })
}
