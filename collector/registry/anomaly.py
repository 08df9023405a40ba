"""Anomalies (§8.4 异常处置): an hour's PV or UV against its seasonal baseline. Pure logic.

The baseline of hour H of day D is the same hour on the previous days of the same kind:
weekdays against weekdays, weekends against weekends (a school platform's Saturday is
not a broken Monday). Its centre is the median and its spread the MAD (median absolute
deviation, × 1.4826 to match a standard deviation), both robust: last week's outage or
a one-off exam day does not move them much. An hour is anomalous when it lies more than
`sensitivity` spreads from the median.

The spread has a floor, because a flat history (MAD = 0) would otherwise call any change
an anomaly: the Poisson noise of the median count (√median) plus 10 % of it, since
real traffic varies from day to day more than Poisson noise (weather, timetables).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

MAD_TO_SIGMA = 1.4826
RELATIVE_FLOOR = 0.10
# A baseline needs this many same-kind days: fewer medians are noise.
MIN_BASELINE_DAYS = 3
# Differences smaller than this many events are never an anomaly, whatever the spread:
# a platform going from 2 to 9 page views in an hour is not news.
MIN_ABSOLUTE_CHANGE = 10
SPIKE, DROP = "spike", "drop"
WARNING, CRITICAL = "warning", "critical"


@dataclass(frozen=True)
class Baseline:
    median: float
    spread: float  # robust standard deviation, floored
    days: int  # how many same-kind days it was built from

    def expected_range(self, sensitivity: float) -> tuple[float, float]:
        return (max(0.0, self.median - sensitivity * self.spread), self.median + sensitivity * self.spread)


@dataclass(frozen=True)
class Anomaly:
    platform: str
    hour: str  # the hour bucket id, YYYYMMDDHH (local time)
    metric: str  # pv or uv
    kind: str  # spike or drop
    severity: str  # warning or critical
    value: int
    expected: float  # the baseline median
    low: float  # the expected range at the sensitivity in force
    high: float
    score: float  # (value - median) / spread
    detected_at: float
    note: str = ""  # for health alerts: the reasons, in words

    @property
    def id(self) -> str:
        """Stable: the same hour and metric of a platform is recorded (and sent) once;
        a health alert once per state and hour."""
        metric = f"{self.metric}:{self.kind}" if self.metric == "health" else self.metric
        return f"{self.platform}:{self.hour}:{metric}"

    def as_dict(self) -> dict:
        return {"id": self.id, **dataclasses.asdict(self)}


def health_alert(platform: str, hour: str, state: str, reasons: str, expected: float, now: float) -> Anomaly:
    """A platform turning silent or degraded, as an alert that goes the anomalies' way
    (listed, sent to the webhook): at most one per platform and hour, so a flapping
    platform does not flood the receiver."""
    severity = CRITICAL if state == "silent" else WARNING
    return Anomaly(platform, hour, "health", state, severity, 0, expected, 0.0, 0.0, 0.0, now, reasons)


def is_weekend(day: date) -> bool:
    return day.weekday() >= 5


def same_kind_history(today: date, history: Sequence[tuple[date, int]]) -> list[int]:
    """The values of the days of the same kind (weekday / weekend) as `today`."""
    return [value for day, value in history if is_weekend(day) == is_weekend(today)]


def baseline(values: Sequence[int]) -> Baseline | None:
    if len(values) < MIN_BASELINE_DAYS:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SIGMA * mad, math.sqrt(median) + RELATIVE_FLOOR * median, 1.0)
    return Baseline(float(median), spread, len(values))


def detect(
    platform: str, hour: str, metric: str, value: int, base: Baseline | None, sensitivity: float, now: float
) -> Anomaly | None:
    """A spike or a drop of `value` against `base`, or None. Critical at twice the
    sensitivity, and for a drop to zero from a baseline that expected traffic."""
    if base is None or abs(value - base.median) < MIN_ABSOLUTE_CHANGE:
        return None
    score = (value - base.median) / base.spread
    if abs(score) <= sensitivity:
        return None
    kind = SPIKE if score > 0 else DROP
    critical = abs(score) > 2 * sensitivity or (kind == DROP and value == 0)
    low, high = base.expected_range(sensitivity)
    return Anomaly(
        platform, hour, metric, kind, CRITICAL if critical else WARNING, value, base.median,
        round(low, 1), round(high, 1), round(score, 2), now,
    )
