// Helpers every module shares: the settings, the DEBUG log, storage that never throws,
// ids, listeners. Nothing here touches the page when imported, so the pure modules
// that import it run under node for the unit tests.
//
// `DEBUG` is not a variable: the build replaces it with `true` in beacon.debug.js and
// `false` in beacon.js, where every `DEBUG && log(...)` then disappears (see basic.js
// for how a page with DEBUG on gets the debug build).

// Settings, changed by the `set` command (see ARCHITECTURE.md for every key).
export var cfg = {}

// Lines logged before the command queue has been read wait here: DEBUG may be switched
// off by a command that comes after them.
var early = []

// log(message, data): one console line when DEBUG is on.
export function log(message, data) {
  if (early) early.push([message, data])
  else if (cfg.debug) {
    try { console.log('[edu-beacon] ' + message, data == null ? '' : data) } catch (e) {}
  }
}

// Called once the first commands have run: prints what was held back.
export function logReady() {
  var held = early
  early = 0
  held.forEach(function (line) { log(line[0], line[1]) })
}

// Wraps a listener or callback so nothing we do can throw into the host page.
export function safe(fn) {
  return function () {
    try { return fn.apply(this, arguments) } catch (e) { DEBUG && log('error', e) }
  }
}

// A listener that cannot throw. (None of ours blocks scrolling: scroll events cannot
// be cancelled, so they need no `passive` flag.)
export function on(target, type, fn) {
  target.addEventListener(type, safe(fn))
}

// localStorage under one prefix, JSON-encoded. When storage is disabled or full
// (private modes, sandboxed iframes, quota) the page keeps a copy in memory, so ids
// stay stable for the life of the page instead of changing on every event.
var memory = {}

export function load(key) {
  var value
  try { value = JSON.parse(localStorage.getItem('eb_' + key)) } catch (e) {}
  return value == null ? memory[key] : value
}

export function save(key, value) {
  memory[key] = value
  try {
    if (value == null) localStorage.removeItem('eb_' + key)
    else localStorage.setItem('eb_' + key, JSON.stringify(value))
  } catch (e) {}
}

export function now() {
  return Date.now()
}

// 8 random base-36 digits and the time: unique enough for visitor, session and event ids.
export function rid() {
  return Math.random().toString(36).slice(2, 10) + now().toString(36)
}

// `v` as a string of at most `max` characters (the collector rejects longer fields),
// never ending in half a surrogate pair (the collector's JSON parser rejects those).
export function clip(v, max) {
  return v == null ? v : String(v).slice(0, max).replace(/[\ud800-\udbff]$/, '')
}
