"""What the read API hands each feature to compute its figures from, and the one
rounding of a ratio every figure uses. Pure: api/stats.py does the reading."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BucketReading:
    """A bucket's (or a range's) stored counts."""

    counters: dict[str, int]  # the counters hash (…:c), summed over the range
    hlls: dict[str, int]  # bucket HLL suffix -> PFCOUNT (of the union over the range)
    catalogue_total: int = 0  # the uploaded catalogue's total; 0 without one


def ratio(a: float, b: float, digits: int = 4) -> float | None:
    """a / b rounded, or None when b is 0 (a rate of nothing is unknown, not 0)."""
    return round(a / b, digits) if b else None


def split_metrics(raw: dict[str, int]) -> dict[str, dict[str, int]]:
    """A metrics hash (METRIC:VALUE -> n) as value -> metric -> n. Metric names hold no
    ':' (store/names.py), so the first one splits."""
    rows: dict[str, dict[str, int]] = {}
    for name, n in raw.items():
        metric, _, value = name.partition(":")
        rows.setdefault(value, {})[metric] = n
    return rows
