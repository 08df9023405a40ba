"""The deep tag's figures in `/api/stats`, by feature: what api/stats.py iterates.

Everything derived (averages, rates, nets) is computed by the features from the stored
counts; see docs/redis-keys.md for what is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collector.features import clicks, interactions, media, tracks, users
from collector.features.reading import BucketReading
from collector.store import names

# Figures of a bucket or range: name in the answer -> the feature's function, in the
# answer's order.
FEATURE_FIGURES: dict[str, Callable[[BucketReading], object]] = {
    "media": media.figures,
    "interactions": interactions.figures,
    "clicks": clicks.figures,
    "tracks": tracks.figures,
    "users": users.figures,
}
# The bucket HyperLogLogs the features' figures count (api/stats.py reads them).
FEATURE_HLLS = (*media.HLLS, *users.HLLS)

ROW_LIMIT = 100  # rows per deep breakdown unless the query asks for more (limit=)
MAX_ROW_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A deep breakdown (a `…:m:DIM` hash): what its rows hold and what sorts them."""

    sort_metric: str  # rows are sorted by it, largest first
    row_parts: tuple[Callable[[dict[str, int]], dict], ...]

    def row(self, value: str, m: dict[str, int]) -> dict:
        """One row, from its summed metrics (api/stats.py adds the HLL figures)."""
        row: dict = {"value": value}
        for part in self.row_parts:
            row.update(part(m))
        return row

    def sort_key(self, row: dict) -> tuple:
        return (-row.get(self.sort_metric, 0), row["value"])


_BREAKDOWN_OF_FEATURE = {
    "target": Breakdown("clicks", (clicks.row_figures,)),
    "track": Breakdown("exposures", (tracks.row_figures,)),
    "item": Breakdown("exposures", (tracks.row_figures,)),
    "channel": Breakdown("shares", (interactions.channel_row_figures,)),
}
_RESOURCE_BREAKDOWN = Breakdown("views", (media.row_figures, interactions.row_figures))
# In names.DEEP_DIMENSIONS order (the order the read API lists them in).
DEEP_BREAKDOWNS: dict[str, Breakdown] = {
    dim: _RESOURCE_BREAKDOWN if dim in names.RESOURCE_DIMENSIONS else _BREAKDOWN_OF_FEATURE[dim]
    for dim in names.DEEP_DIMENSIONS
}


def deep_figures(reading: BucketReading) -> dict:
    """The deep-tag part of a bucket's (or range's) figures."""
    return {name: figures(reading) for name, figures in FEATURE_FIGURES.items()}
