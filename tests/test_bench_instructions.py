"""bench.instructions counts the instructions of valid hits only: every pass it drives is
counted in full, with nothing rejected or flagged (a pass of re-sent ids or stale
timestamps would count the rejection path's instructions instead), and the figure is read
from cachegrind's own summary line."""

from __future__ import annotations

import pytest

from bench import instructions


@pytest.mark.parametrize("shape", ["get", "post50", "unique"])
def test_each_measured_pass_is_counted_in_full_with_nothing_rejected(shape: str):
    passes = instructions.passes_of(shape, 200)
    assert len(passes) == 1 + max(instructions.MEASURED_PASSES)
    per_pass = len(passes[1]) * instructions.HITS_PER_REQUEST[shape]
    for measured in instructions.MEASURED_PASSES:
        events, reasons = instructions.drive(passes, measured)
        assert reasons == {}
        assert events == (measured + 1) * per_pass


def test_unique_passes_share_no_request():
    passes = instructions.passes_of("unique", 100)
    assert len({data for requests in passes for data in requests}) == sum(len(p) for p in passes)


def test_the_count_is_cachegrinds_i_refs_line():
    summary = "==41== \n==41== I   refs:      1,234,567,890\n==41== \n"
    assert instructions.instruction_count(summary) == 1_234_567_890
    with pytest.raises(ValueError):
        instructions.instruction_count("==41== ERROR SUMMARY: 0 errors")
