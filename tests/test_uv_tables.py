"""The UV guard's memory of a minute (hit/uvguard.py UvGuard): the compiled tables of 64-bit
slots (hit/_id_table.c HashSet, HashCounts) answer as the set and the dict they replace, and
hold no object per identity (issue 17, peak RSS after 10^6 distinct visitors:
bench/RESULTS.md, session 29)."""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc

import pytest

from collector.hit.uvguard import UID, VID, VISITOR, UvGuard, minute_memory
from collector.native import c_module

tables = c_module("collector.hit._id_table")
compiled_only = pytest.mark.skipif(tables is None, reason="the install compiled nothing")

# Keys a table of 64-bit slots must tell apart: the empty slot's 0, the ends of the range,
# ints that share their low bits, and Python's hashes themselves.
EDGE_KEYS = [0, 1, -1, -2, 2**63 - 1, -(2**63), 2**32, 2**33, 2**32 + 2**33, hash(("vid", "10.0.0.1"))]


@compiled_only
def test_a_hash_set_answers_as_a_set():
    rng = random.Random(29)
    keys = EDGE_KEYS + [rng.getrandbits(64) - 2**63 for _ in range(2000)] + [n << 40 for n in range(200)]
    compiled, plain = tables.HashSet(5000), set()
    for key in keys + keys[::3]:  # every key, then some again
        assert (key in compiled) == (key in plain)
        compiled.add(key)
        plain.add(key)
        assert len(compiled) == len(plain)
    absent = [rng.getrandbits(64) - 2**63 for _ in range(2000)]
    assert all((key in compiled) == (key in plain) for key in keys + absent)
    compiled.clear()
    assert len(compiled) == 0 and not any(key in compiled for key in keys)
    compiled.add(0)
    assert 0 in compiled and len(compiled) == 1


@compiled_only
def test_hash_counts_answer_as_a_dict():
    rng = random.Random(17)
    keys = EDGE_KEYS + [rng.getrandbits(64) - 2**63 for _ in range(500)]
    compiled, plain = tables.HashCounts(len(keys)), {}
    for step in range(5000):
        key = rng.choice(keys)
        assert compiled.get(key, 0) == plain.get(key, 0) and compiled.get(key) == plain.get(key)
        count = plain.get(key, 0) + 1 if step % 7 else rng.getrandbits(32)
        compiled[key] = plain[key] = count
        assert compiled[key] == count and len(compiled) == len(plain)
    assert {key: compiled.get(key) for key in keys} == {key: plain.get(key) for key in keys}
    compiled.clear()
    assert len(compiled) == 0 and compiled.get(0, -5) == -5
    with pytest.raises(KeyError):
        compiled[EDGE_KEYS[-1]]


@compiled_only
def test_the_tables_refuse_what_they_cannot_hold():
    held = tables.HashSet(3)
    for key in (5, 0, -5):
        held.add(key)
    held.add(5)  # held already: no new key
    with pytest.raises(OverflowError):
        held.add(6)
    assert len(held) == 3 and 6 not in held
    counts = tables.HashCounts(2)
    counts[1] = 2**32 - 1
    with pytest.raises(OverflowError):
        counts[1] = 2**32
    with pytest.raises(OverflowError):
        counts[2**64] = 1  # not a 64-bit hash
    with pytest.raises(TypeError):
        counts["key"] = 1
    with pytest.raises(TypeError):
        del counts[1]
    assert counts[1] == 2**32 - 1
    with pytest.raises(ValueError):
        tables.HashSet(0)


def _hits(rng: random.Random, length: int) -> list[tuple[int, str, bytes, str, str | None]]:
    """Hits of a few minutes: (minute, address, visitor key, vid, uid). Most addresses bring
    a person or two; a few bring many (a school's network, or one varying its identities),
    and people come back."""
    people: list[tuple[str, bytes, str, str | None]] = []
    out = []
    for n in range(length):
        if people and rng.random() < 0.4:
            address, visitor, vid, uid = rng.choice(people)
        else:
            busy = rng.random() < 0.5
            address = f"10.0.{rng.randrange(3)}.1" if busy else f"10.1.{rng.randrange(200)}.{rng.randrange(200)}"
            visitor = b"visitor-%d" % rng.randrange(400) if rng.random() < 0.7 else b"visitor-%d" % n
            vid = rng.choice(["", f"vid-{rng.randrange(300)}", f"vid-{n}"])
            uid = rng.choice([None, None, f"uid-{rng.randrange(50)}"])
            people.append((address, visitor, vid, uid))
        out.append((n * 4 // length, address, visitor, vid, uid))
    return out


@compiled_only
@pytest.mark.parametrize("threshold, max_identities", [(3, 50_000), (10, 400), (1, 60)])
def test_the_guard_judges_alike_over_the_compiled_tables_and_the_set(threshold, max_identities):
    """Every hit's verdict, the counts of suspects and of unjudged identities, and the minute's
    size: the same over the compiled tables and over the set and dict, with a memory that
    fills (max_identities 400, 60) and one that does not."""
    compact, plain = (UvGuard(threshold, max_identities, compact=flag) for flag in (True, False))
    assert type(compact._known) is tables.HashSet and type(plain._known) is set
    for minute, address, visitor, vid, uid in _hits(random.Random(threshold), 6000):
        verdicts = []
        for guard in (compact, plain):
            guard.at(minute)
            verdicts.append((guard.suspects(address, visitor, vid, uid), len(guard), guard.unjudged))
        assert verdicts[0] == verdicts[1]
    assert compact.suspect == plain.suspect and set(compact.suspect) <= {VISITOR, VID, UID}
    assert sum(compact.suspect.values()) > 0
    if max_identities < 1000:
        assert compact.unjudged > 0


@compiled_only
def test_the_guards_minute_holds_no_object_per_identity():
    """50,000 identities from as many addresses: no Python object allocated for them, and the
    memory (its slots) a fraction of the set's and dict's, measured the same way."""
    sizes = {}
    for compact in (True, False):
        gc.collect()
        tracemalloc.start()
        guard = UvGuard(3, 50_000, compact=compact)
        guard.at(1)
        for n in range(20_000):
            guard.suspects(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", b"visitor-%d" % n, f"vid-{n}", None)
        assert len(guard) == 50_000 and guard.unjudged > 0
        blocks = sys.getallocatedblocks()
        del guard
        gc.collect()
        freed_blocks = blocks - sys.getallocatedblocks()
        sizes[compact] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if compact:
            assert freed_blocks < 100  # the tables' two allocations each, the guard and its Counter
    assert sizes[True] < 3.2 * 2**20 < 5 * 2**20 < sizes[False]


def test_the_fallback_memory_is_a_set_out_of_the_garbage_collectors_walks():
    known, counts = minute_memory(100, compact=False)
    assert type(known) is set and not gc.is_tracked(known) and counts == {}
