"""The deep tag's figures in `/api/stats`: media, interactions, click tracks, users.

Everything derived (averages, rates, nets) is computed here from the stored counts;
see docs/redis-keys.md for what is stored.
"""

from __future__ import annotations

from collector.store import keys

COMPLETION_BINS = ("0_25", "25_50", "50_75", "75_90", "90_100")
PROGRESS = (10, 25, 50, 75, 90, 100)
# Breakdown -> the metric its rows are sorted by (largest first).
DEEP_BREAKDOWNS = {
    "resource": "views", "rtype": "views", "subject": "views", "stage": "views", "source": "views",
    "target": "clicks", "track": "exposures", "item": "exposures", "channel": "shares",
}
ROW_LIMIT = 100  # rows per deep breakdown unless the query asks for more (limit=)
MAX_ROW_LIMIT = 10_000


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def media_figures(m: dict[str, int]) -> dict:
    """Views, time and completion of a set of media sessions (a bucket, a resource, ...)."""
    sessions = m.get("completion_n", 0)
    return {
        "views": m.get("views", 0),
        "watch_ms": m.get("watch_ms", 0),
        "read_ms": m.get("read_ms", 0),
        "watched_s": m.get("watched_s", 0),
        "completion": {
            "sessions": sessions,
            "avg": _ratio(m.get("completion_milli", 0), 1000 * sessions),
            "histogram": {bin_.replace("_", "-"): m.get("completion_" + bin_, 0) for bin_ in COMPLETION_BINS},
            "completed": m.get("completed", 0),
            "completed_rate": _ratio(m.get("completed", 0), sessions),
        },
        "progress": {str(pb): m.get(f"progress{pb}", 0) for pb in PROGRESS},
    }


def interaction_figures(m: dict[str, int]) -> dict:
    ratings = m.get("ratings", 0)
    return {
        "ratings": ratings,
        "rating_sum": m.get("rating_sum", 0),
        "rating_avg": _ratio(m.get("rating_sum", 0), ratings),
        "likes": m.get("likes", 0),
        "unlikes": m.get("unlikes", 0),
        "likes_net": m.get("likes", 0) - m.get("unlikes", 0),
        "favorites": m.get("favorites", 0),
        "unfavorites": m.get("unfavorites", 0),
        "favorites_net": m.get("favorites", 0) - m.get("unfavorites", 0),
        "shares": m.get("shares", 0),
        "comments": m.get("comments", 0),
    }


def derive_deep(counters: dict[str, int], media_viewers: int, users: int, resources: int, catalogue_total: int) -> dict:
    """The deep-tag part of a bucket's (or range's) figures."""
    media = media_figures(counters)
    media["viewers"] = media_viewers
    media["resources_viewed"] = resources
    media["avg_views_per_resource"] = _ratio(media["views"], catalogue_total or resources)
    # The standard's 资源总数 (table 4 row 1): the uploaded catalogue's total, None without one.
    media["catalogue_resources"] = catalogue_total or None
    exposures = counters.get("track_exposures", 0)
    pv = counters.get("pv", 0)
    logged_in_pv = counters.get("pv_logged_in", 0)
    return {
        "media": media,
        "interactions": interaction_figures(counters),
        "clicks": counters.get("ev:click", 0),
        "tracks": {
            "exposures": exposures,
            "clicks": counters.get("track_clicks", 0),
            "ctr": _ratio(counters.get("track_clicks", 0), exposures),
            "entries": counters.get("entries", 0),
        },
        "users": {"logged_in": users, "pv_logged_in": logged_in_pv, "pv_anonymous": max(pv - logged_in_pv, 0)},
    }


def split_metrics(raw: dict[str, int]) -> dict[str, dict[str, int]]:
    """A metrics hash (METRIC:VALUE -> n) as value -> metric -> n."""
    rows: dict[str, dict[str, int]] = {}
    for name, n in raw.items():
        metric, _, value = name.partition(":")
        rows.setdefault(value, {})[metric] = n
    return rows


def breakdown_row(dim: str, value: str, m: dict[str, int]) -> dict:
    """One row of a deep breakdown, from its summed metrics (HLL figures added later)."""
    row: dict = {"value": value}
    if dim in keys.RESOURCE_DIMENSIONS:
        row.update(media_figures(m))
        row.update(interaction_figures(m))
    elif dim in ("track", "item"):
        row.update(exposures=m.get("exposures", 0), clicks=m.get("clicks", 0), entries=m.get("entries", 0))
        row["ctr"] = _ratio(row["clicks"], row["exposures"])
    elif dim == "target":
        # Exposures of a target come from aplus.record(name, 'EXP') (no track).
        row.update(clicks=m.get("clicks", 0), exposures=m.get("exposures", 0))
        row["ctr"] = _ratio(row["clicks"], row["exposures"])
    elif dim == "channel":
        row["shares"] = m.get("shares", 0)
    return row


def sort_key(dim: str):
    metric = DEEP_BREAKDOWNS[dim]
    return lambda row: (-row.get(metric, 0), row["value"])


def parse_catalogue(body: object) -> dict[str, int]:
    """An uploaded catalogue — {"total": N, "rtype": {"video": N, ...}, "subject": {...}, ...}
    — as fields of the catalogue hash. Raises ValueError naming what is wrong."""
    if not isinstance(body, dict) or not body:
        raise ValueError("expected a JSON object: {\"total\": n, \"rtype\": {\"video\": n}, ...}")
    fields: dict[str, int] = {}
    for dim, counts in body.items():
        if dim == "total":
            if type(counts) is not int or counts < 0:
                raise ValueError("total must be a non-negative integer")
            fields["total"] = counts
            continue
        if dim not in keys.RESOURCE_LABELS:
            raise ValueError(f"unknown dimension {dim!r}; one of total, " + ", ".join(keys.RESOURCE_LABELS))
        if not isinstance(counts, dict):
            raise ValueError(f"{dim} must map values to resource counts")
        for value, n in counts.items():
            if type(n) is not int or n < 0 or len(value) > 128:
                raise ValueError(f"{dim}.{value[:40]}: a non-negative integer count, names up to 128 characters")
            fields[keys.metric_field(dim, value)] = n
    return fields
