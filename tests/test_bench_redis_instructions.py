"""bench.redis_instructions counts a tiny input under callgrind: instructions per event,
the split by function, and the data's digest (the same as without valgrind)."""

from __future__ import annotations

import pickle
import shutil

import pytest

from bench import redis_instructions


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_a_tiny_input_is_counted_with_its_split_and_digest(tmp_path):
    out = tmp_path / "built.pickle"
    redis_instructions.build(out, apps=2, batch=100, batches=1)
    built = pickle.loads(out.read_bytes())
    got = redis_instructions.count(built, redis_instructions.DEFAULT_BINARY, tmp_path)
    assert got["events"] == built["events"] >= 100
    assert got["keys"] > 10 and len(got["digest"]) == 40
    assert got["per_event"] > got["split"]["hincrbyCommand"] > 0  # the commands are part of the total
