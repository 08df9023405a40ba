"""A histogram of plain integers, cheap enough for the hit path.

prometheus_client's Histogram takes a lock and walks its buckets on every observation;
the hit fast path (web/hit_server.py) cannot afford that per request. This keeps one
list of counts and a sum: an observation is a bisect (C) and two additions. The
cumulative buckets Prometheus wants are made at scrape time (web/metrics.py).
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter

# Seconds. A hit is answered in tens of microseconds when all is well; a flush in
# milliseconds to seconds. One set of bounds serves both, so dashboards compare them.
DURATION_BOUNDS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


class Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """[(le, observations <= le)], the last le "+Inf", as Prometheus exposes buckets."""
        total, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class AnswerCounts:
    """Answers by HTTP status, and the seconds each took: what the hit paths count per request
    (web/http_limits.py's HttpStats holds one). Here, compiled, rather than in HttpStats
    (interpreted: http_limits.py's exceptions subclass builtins), as the fast path calls it
    once a hit."""

    __slots__ = ("by_status", "seconds")

    def __init__(self) -> None:
        # A dict, not a Counter: compiled code reaches a subclass's items through the
        # generic protocols (~1,500 instructions an answer, bench/RESULTS.md session 17).
        self.by_status: dict[int, int] = {}
        self.seconds = Histogram()

    def answered(self, status: int, started: float) -> None:
        """An answer of `status`; `started` is its time.perf_counter() on arrival."""
        self.add(status, 1)
        self.seconds.observe(perf_counter() - started)

    def add(self, status: int, count: int) -> None:
        """`count` (may be negative) more answers of `status`, without one's time."""
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + count
