// Batches as they go over the wire, and the offline queue. Pure functions.

// Events kept for replay: enough for a few minutes of a page without a network, small
// enough for localStorage and a few POSTs.
export var CAP = 50

// Older events are dropped: the collector files an event under its client time only
// within a day (`client_ts_window`), so a replay after that would land on the wrong day.
export var MAX_AGE = 24 * 3600 * 1000

// Bytes per request: the collector refuses bodies over `max_body_bytes` (16 384 by
// default) with a 413, and sendBeacon/keepalive share a 64 KiB budget per page.
export var MAX_BODY = 15000

// The offline queue `queue` with `events` appended, as of time `t`: the newest CAP
// events younger than MAX_AGE, each marked `re: 1` — sent before, maybe counted with
// only the answer lost; its id unchanged, the collector counts it once. (An event the
// collector keeps rejecting, which an <img> fallback cannot tell from a network error,
// thus goes after a day at the latest.)
export function enqueue(queue, events, t) {
  return (queue || []).concat(events).filter(function (e) {
    e.re = 1
    return t - e.ts < MAX_AGE
  }).slice(-CAP)
}
