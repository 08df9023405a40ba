"""20,000 hostile requests against a real collector process every CI run (issue 13, item 6).

bench/fuzz.py makes them (Hypothesis draws the parts: queries, JSON events and batches,
raw heads; a seeded Random puts 20,000 cases together from them) and sends them
pipelined over keep-alive connections, with control page views interleaved. The
collector must answer every request with no 5xx, within bench.fuzz.DEADLINE, stay up,
log no traceback, and count the control app's acknowledged page views exactly.

The seed changes each run (printed on failure); FUZZ_SEED=N repeats a run, and
`python -m bench.fuzz --cases 100000` is the longer run.
"""

from __future__ import annotations

import os
import random

from bench import fuzz

CASES = 20_000


def test_twenty_thousand_generated_requests_get_no_5xx_no_hang_and_exact_counts(collector_factory):
    collector = collector_factory()
    seed = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))
    result = fuzz.run(collector.base_url, CASES, seed, connections=8)
    reproduce = f"FUZZ_SEED={seed}"
    assert sum(result["cases"].values()) == CASES
    assert not result["server_errors"], (reproduce, result["server_errors"][:5])
    assert not result["hangs"], (reproduce, len(result["hangs"]), result["hangs"][:5])
    assert result["alive"] and collector.proc.poll() is None, (reproduce, collector.log()[-3000:])
    assert "Traceback" not in collector.log(), (reproduce, collector.log()[-3000:])
    assert result["control_acknowledged"] > 0, (reproduce, result["statuses"])
    assert result["control_pv"] == result["control_acknowledged"], (reproduce, result)
