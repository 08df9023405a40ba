"""bench.get_ratio divides each collector run by the ceiling runs on both sides of it, and
runs end to end against the real servers (timings unchecked: they are the machine's). Its
unique shape gives every run visitors no earlier run sent, and no run wraps its slice."""

from __future__ import annotations

import shutil

import pytest

from bench import get_ratio

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


def test_each_collector_run_is_divided_by_the_ceiling_runs_beside_it():
    assert get_ratio.ratios([100.0, 300.0, 200.0], [100.0, 125.0]) == [0.5, 0.5]
    with pytest.raises(ValueError):
        get_ratio.ratios([100.0, 200.0], [100.0, 100.0])


@needs_wrk
def test_a_short_alternating_run_measures_both_servers(tmp_path):
    result = get_ratio.measure(pairs=1, seconds=1, requests=2000, workdir=tmp_path, log=lambda *_: None)
    rps, cpu_us = result["rps"], result["cpu_us"]
    assert len(rps["ceiling"]) == len(cpu_us["ceiling"]) == 2 and len(rps["collector"]) == len(cpu_us["collector"]) == 1
    assert all(value > 0 for value in rps["ceiling"] + rps["collector"] + cpu_us["ceiling"] + cpu_us["collector"])
    assert result["rps_median"] == rps["collector"][0] / (sum(rps["ceiling"]) / 2)
    assert result["cpu_median"] == pytest.approx((sum(cpu_us["ceiling"]) / 2) / cpu_us["collector"][0])


def _visitors(path) -> list[tuple[str, str]]:
    """(address, User-Agent) of every request line of a wrk request file."""
    out = []
    for line in path.read_text().splitlines():
        headers = dict(field.split(": ", 1) for field in line.split("\t")[3:])
        out.append((headers["X-Forwarded-For"], headers["User-Agent"]))
    return out


def test_unique_slices_share_no_address_and_no_user_agent(tmp_path):
    slices = [_visitors(path) for path in get_ratio.unique_slices(tmp_path, 4, 500)]
    assert [len(s) for s in slices] == [500] * 4
    every = [visitor for s in slices for visitor in s]
    assert len({ip for ip, _ in every}) == len(every)  # within a slice and across slices
    assert len({ua for _, ua in every}) == len(every)


def test_a_slice_is_never_asked_past_its_end():
    limit = get_ratio.slice_limit(1000)
    assert limit + get_ratio.CONNECTIONS <= 1000  # the stop count, plus one request a connection asks as it stops
    with pytest.raises(ValueError):
        get_ratio.slice_limit(2 * get_ratio.CONNECTIONS)


@needs_wrk
def test_a_short_unique_run_sends_each_slice_once_and_stops_at_its_end(tmp_path):
    """600 requests a slice, runs of 1 s: the collector answers far more than 600 a second, so
    without the stop every run would wrap and send its slice's visitors again."""
    result = get_ratio.measure(pairs=2, seconds=1, requests=600, workdir=tmp_path, log=lambda *_: None,
                               shape="unique")
    assert len(result["requests"]["collector"]) == 2 and len(result["requests"]["ceiling"]) == 3
    assert all(0 < sent <= 600 for sent in result["requests"]["collector"])
    scripts = sorted(tmp_path.glob("unique-*.lua"))
    assert len(scripts) == 3  # the warm-up's and each run's: no run shares a file with another
    assert all(f"local STOP_AFTER = {get_ratio.slice_limit(600)} " in path.read_text() for path in scripts)
    assert result["cpu_median"] > 0 and result["rps_median"] > 0
