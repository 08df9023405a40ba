"""hit/ingest.py's minute_of against the expression it replaces, int(moment // 60): the
same minute for every moment, or the same error. Its fast path (int(moment) // 60) is taken
for 0 <= moment < 2**53; the moments next to each of its ends, to each multiple of 60 and to
each power of two, and random ones, are compared."""

from __future__ import annotations

import math
import random

import pytest

from collector.hit.ingest import minute_of


def reference(moment: float) -> int | str:
    try:
        return int(moment // 60)
    except Exception as error:  # noqa: BLE001 - the type is the answer compared
        return type(error).__name__


def ours(moment: float) -> int | str:
    try:
        return minute_of(moment)
    except Exception as error:  # noqa: BLE001
        return type(error).__name__


def neighbours(x: float) -> list[float]:
    return [math.nextafter(math.nextafter(x, -math.inf), -math.inf), math.nextafter(x, -math.inf), x,
            math.nextafter(x, math.inf), math.nextafter(math.nextafter(x, math.inf), math.inf)]


EDGES = [0.0, -0.0, 5e-324, -5e-324, 0.5, -0.5, 59.999999, 60.0, 1_700_000_000.0, 1_800_000_000.123, 2.0**52, 2.0**53,
         2.0**53 + 2, 2.0**60, 1e300, -1e300, -60.0, -61.0, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("edge", EDGES)
def test_the_minute_next_to_the_edges_is_the_float_divisions(edge):
    for moment in neighbours(edge) if math.isfinite(edge) else [edge]:
        assert ours(moment) == reference(moment), moment


def test_the_minute_next_to_multiples_of_60_and_powers_of_two_is_the_float_divisions():
    moments = [float(60 * k) for k in (1, 2, 1000, 28_333_333, 30_000_000, 2**40, 2**46)]
    moments += [2.0**k for k in range(-3, 64)]
    for moment in moments:
        for near in neighbours(moment) + [-m for m in neighbours(moment)]:
            assert ours(near) == reference(near), near


def test_random_moments_give_the_float_divisions_minute():
    rng = random.Random(2212)
    for _ in range(100_000):
        moment = rng.choice((rng.uniform(0, 4e9), rng.uniform(-1e4, 1e4), rng.random() * 2.0 ** rng.randint(-10, 70),
                             rng.randrange(2**53) / 1000, float(rng.randrange(-(2**62), 2**62))))
        assert ours(moment) == reference(moment), moment
