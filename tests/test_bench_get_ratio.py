"""bench.get_ratio divides each collector run by the ceiling runs on both sides of it, and
runs end to end against the real servers (timings unchecked: they are the machine's)."""

from __future__ import annotations

import shutil

import pytest

from bench import get_ratio


def test_each_collector_run_is_divided_by_the_ceiling_runs_beside_it():
    assert get_ratio.ratios([100.0, 300.0, 200.0], [100.0, 125.0]) == [0.5, 0.5]
    with pytest.raises(ValueError):
        get_ratio.ratios([100.0, 200.0], [100.0, 100.0])


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_a_short_alternating_run_measures_both_servers(tmp_path):
    result = get_ratio.measure(pairs=1, seconds=1, requests=2000, workdir=tmp_path, log=lambda *_: None)
    rps, cpu_us = result["rps"], result["cpu_us"]
    assert len(rps["ceiling"]) == len(cpu_us["ceiling"]) == 2 and len(rps["collector"]) == len(cpu_us["collector"]) == 1
    assert all(value > 0 for value in rps["ceiling"] + rps["collector"] + cpu_us["ceiling"] + cpu_us["collector"])
    assert result["rps_median"] == rps["collector"][0] / (sum(rps["ceiling"]) / 2)
    assert result["cpu_median"] == pytest.approx((sum(cpu_us["ceiling"]) / 2) / cpu_us["collector"][0])
