"""Shares in percent that add up to exactly 100: the largest-remainder method.

Rounding each share on its own can sum to 99.99 or 100.01; a report's table must add
up. Each share is first cut down to `decimals`, then the units still missing go, one
each, to the largest remainders (ties to the earlier row, so the result is stable).
"""

from __future__ import annotations

from collections.abc import Sequence


def largest_remainder(values: Sequence[int], decimals: int = 2) -> list[float]:
    total = sum(values)
    if total <= 0:
        return [0.0 for _ in values]
    scale = 100 * 10**decimals  # units of the last decimal in 100 %
    # Integer arithmetic: a float's 13.949999… must not lose a hundredth.
    units = [v * scale // total for v in values]
    remainders = [v * scale % total for v in values]
    missing = scale - sum(units)
    by_remainder = sorted(range(len(values)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[:missing]:
        units[i] += 1
    return [u / 10**decimals for u in units]
