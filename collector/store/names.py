"""The names of what is counted: the fields of the counters hash (`…:c`), the metrics of
the deep-tag hashes (`…:m:DIM`, fields METRIC:VALUE), the completion bins and the
progress boundaries.

One list, so that what the rollup and the flush script write, what the protocol
accepts, what the read API reads and what docs/redis-keys.md documents cannot drift
apart: tests/test_names.py keeps the doc's tables equal to it and checks that what a
collector really writes is named here. keys.py builds the key names; this module names
what is inside the keys.
"""

from __future__ import annotations

from typing import Final

# ---- media ------------------------------------------------------------------------
# `progress` events carry the boundary (percent of the duration) they passed: the
# protocol accepts these, the beacon sends these (beacon_js/src/media.js BOUNDS, checked
# by its tests against beacon_js/test/protocol-limits.json).
PROGRESS_BOUNDARIES = (10, 25, 50, 75, 90, 100)
# Completion histogram bins: [lower, upper) percent of the duration played (the last
# one includes 100). The flush script gets them substituted (features/media.py).
COMPLETION_BINS = ((0, 25), (25, 50), (50, 75), (75, 90), (90, 100))


def progress_metric(boundary: int) -> str:
    return f"progress{boundary}"


def completion_bin_metric(lower: int, upper: int) -> str:
    return f"completion_{lower}_{upper}"


# watch_ms, read_ms and progressPB are counted per event; views … completed per session,
# by the flush script, from the session's best progress (features/media_sessions.lua).
MEDIA_METRICS = (
    "views", "watch_ms", "read_ms", "watched_s", "completion_n", "completion_milli",
    *(completion_bin_metric(lo, hi) for lo, hi in COMPLETION_BINS), "completed",
    *(progress_metric(pb) for pb in PROGRESS_BOUNDARIES),
)

# ---- interactions -----------------------------------------------------------------
# Interaction action -> the metric it adds to (rate also adds its score to rating_sum).
INTERACTION_METRIC_OF_ACTION: Final = {
    "like": "likes", "unlike": "unlikes", "favorite": "favorites", "unfavorite": "unfavorites",
    "share": "shares", "comment": "comments", "rate": "ratings",
}
INTERACTION_METRICS = ("ratings", "rating_sum", "likes", "unlikes", "favorites", "unfavorites", "shares", "comments")

# ---- click targets and click tracks ------------------------------------------------
TARGET_METRICS = ("clicks", "exposures")
TRACK_METRICS = ("exposures", "clicks", "entries")
# A track metric -> its total in the counters hash (exposures without a track are
# ev:exposure already, so the track's own get a name of their own).
TRACK_TOTAL_OF_METRIC: Final = {"exposures": "track_exposures", "clicks": "track_clicks", "entries": "entries"}
CHANNEL_METRICS = ("shares",)

# ---- the counters hash (…:c) --------------------------------------------------------
# Page views and engagement (features/pages.py).
PV, VISITS, VISITS_MULTI = "pv", "visits", "visits_multi"
ENGAGED_MS, ENGAGEMENTS, SCROLL_SUM, SCROLL_COUNT = "engaged_ms", "engagements", "scroll_sum", "scroll_count"
BOT_PV, BOT_HITS = "bot_pv", "bot_hits"
PAGE_COUNTERS = (PV, VISITS, VISITS_MULTI, ENGAGED_MS, ENGAGEMENTS, SCROLL_SUM, SCROLL_COUNT, BOT_PV, BOT_HITS)
# Events of the types that have no counter of their own: ev:TYPE.
EVENT_COUNTER_PREFIX = "ev:"
COUNTED_EVENT_TYPES = ("click", "exposure", "media", "interaction", "custom")
USER_COUNTERS = ("pv_logged_in",)
# rejected:REASON or rejected:REASON:FIELD (hit/protocol.py Problem.counter; the
# registry's reasons, hit/admission.py: rejected:unknown_app, rejected:foreign_origin …).
REJECTED_PREFIX = "rejected:"
# flagged:REASON: counted events with a remark — a page off the platform's domains
# (hit/admission.py), and for the daily validation (hit/remarks.py, registry/health.py)
# a client clock outside the timestamp window, an event id this worker saw lately.
FLAGGED_PREFIX = "flagged:"
FOREIGN_ORIGIN_FLAG = "foreign_origin"
CLIENT_CLOCK_FLAG: Final = "client_clock"
REPEATED_ID_FLAG: Final = "repeated_id"
DUPLICATE_RESEND_FLAG = "duplicate_resend"  # store/dedupe.py: a re-send of an event already counted
# The UV guard (hit/uvguard.py): a hit counted as PV whose visitor, vid or uid was set aside.
SUSPECT_VISITOR_FLAG, SUSPECT_VID_FLAG, SUSPECT_UID_FLAG = "suspect_visitor", "suspect_vid", "suspect_uid"
FLAG_REASONS = (
    FOREIGN_ORIGIN_FLAG, CLIENT_CLOCK_FLAG, REPEATED_ID_FLAG, DUPLICATE_RESEND_FLAG,
    SUSPECT_VISITOR_FLAG, SUSPECT_VID_FLAG, SUSPECT_UID_FLAG,
)

COUNTER_FIELDS = (
    *PAGE_COUNTERS,
    *(EVENT_COUNTER_PREFIX + etype for etype in COUNTED_EVENT_TYPES),
    *USER_COUNTERS,
    *MEDIA_METRICS,
    *INTERACTION_METRICS,
    *TRACK_TOTAL_OF_METRIC.values(),
)

# ---- the deep-tag dimensions (…:m:DIM) ----------------------------------------------
# The resource labels (rtype … source) also get viewer and distinct-resource HLLs per value.
RESOURCE_LABELS = ("rtype", "subject", "stage", "source")
RESOURCE_DIMENSIONS = ("resource", *RESOURCE_LABELS)  # the media and interaction metrics
DEEP_DIMENSIONS = (*RESOURCE_DIMENSIONS, "target", "track", "item", "channel")
METRICS_OF_DIMENSION: dict[str, tuple[str, ...]] = {
    **{dim: MEDIA_METRICS + INTERACTION_METRICS for dim in RESOURCE_DIMENSIONS},
    "target": TARGET_METRICS,
    "track": TRACK_METRICS,
    "item": TRACK_METRICS,
    "channel": CHANNEL_METRICS,
}


def is_counter_field(name: str) -> bool:
    """True when `name` is a field the counters hash may hold."""
    return name in _COUNTER_SET or name.startswith((REJECTED_PREFIX, FLAGGED_PREFIX))


_COUNTER_SET = frozenset(COUNTER_FIELDS)
