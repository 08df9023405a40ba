"""bench/report.py: the targets table names what limits the half-rate tail."""

from __future__ import annotations

from bench import report

COLLECTOR = {"p50_ms": 1.17, "p99_ms": 6.75, "lat_max_ms": 16.8, "rps": 4065.0}
BARE = {"p50_ms": 1.29, "p99_ms": 9.96, "lat_max_ms": 93.5, "rps": 5721.0}


def test_the_half_rate_row_names_the_bare_servers_own_tail():
    limit = report.half_limit(COLLECTOR, BARE)
    assert "bare server's own p99 at its half rate: 9.96 ms (5,721 req/s)" in limit
    assert limit.startswith("p50 1.2 ms but max 17 ms")


def test_without_the_bare_servers_run_the_row_says_only_the_spread():
    limit = report.half_limit(COLLECTOR, None)
    assert "bare server" not in limit
    assert limit == "p50 1.2 ms but max 17 ms: some requests wait far longer than one hit's work"


def test_the_targets_table_reads_the_ceilings_half_rate_row():
    results = {"runs": [], "half_rate": [{"config": "collector x1", "p999_ms": 11.46, **COLLECTOR},
                                         {"config": "ceiling x1", "p999_ms": 80.47, **BARE}]}
    row = next(t for t in report.targets(results) if t["target"].startswith("p99 latency"))
    assert row["met"] is False
    assert "9.96 ms" in row["limit"]
