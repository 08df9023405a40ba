// Deep-tag fields cut to the protocol's limits (docs/protocol.md, "Deep tag"). Pure.
// The collector rejects an event with a field over its limit, so nothing a page
// writes into an attribute or passes to a command goes out uncut.
import { clip } from './util.js'

// A whole number in the protocol's range (0 to 9 999 999), or null: null, NaN,
// Infinity (a live stream's duration), negatives and non-numbers are left out of the
// event.
export function int(v) {
  return v != null && (v = Math.round(v)) >= 0 && v < 1e7 ? v : null
}

// Event properties `p`: at most 32 keys of at most 64 characters, values strings (cut
// to 256), finite numbers or booleans; anything else is dropped. undefined when empty.
export function props(o) {
  var out, n = 0, k, v, t
  for (k in o) {
    v = o[k]
    t = typeof v
    if (n < 32 && (t == 'string' || t == 'boolean' || (t == 'number' && isFinite(v)))) {
      ;(out = out || {})[k.slice(0, 64)] = t == 'string' ? clip(v, 256) : v
      n++
    }
  }
  return out
}

// The resource fields of media and interaction events. `get(name)` reads one of rid,
// rt, subj, stage, src from wherever the page put it (attributes, a command's object).
export function resource(get) {
  var out = {}
  ;['rid', 'rt', 'subj', 'stage', 'src'].forEach(function (k) {
    out[k] = clip(get(k), k == 'rid' ? 128 : k == 'rt' ? 16 : 64)
  })
  return out
}

// JSON from an attribute; undefined when it is not JSON.
export function json(text) {
  try { return JSON.parse(text) } catch (e) {}
}
