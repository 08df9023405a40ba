"""The re-send record (hit/remarks.py RecentIds): the compiled tables of 64-bit slots
(hit/_id_table.c) and the sets they replace answer alike, and hold no object per id
(issue 17, RSS during the POST runs: bench/RESULTS.md, sessions 13 and 14)."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from collector import native
from collector.hit.remarks import RecentIds, compiled_record

compiled_only = pytest.mark.skipif(compiled_record() is None, reason="the install compiled nothing")


class Reference:
    """The record's promise, spelled out: two generations of `limit // 2` hashes of
    (app, id); a new id goes into the current one, which becomes the previous one (the
    older dropped) when it is full."""

    def __init__(self, limit: int) -> None:
        self.generation = max(1, limit // 2)
        self.current: list[int] = []
        self.previous: list[int] = []

    def seen(self, app: str, event_id: str) -> bool:
        key = hash((app, event_id))
        if key in self.current or key in self.previous:
            return True
        if len(self.current) >= self.generation:
            self.previous, self.current = self.current, []
        self.current.append(key)
        return False


def _sequence(rng: random.Random, length: int, apps: int, fresh: float) -> list[tuple[str, str]]:
    """Ids of a few apps, each either new or a repeat of one sent earlier (recent or not)."""
    sent: list[tuple[str, str]] = []
    for n in range(length):
        if not sent or rng.random() < fresh:
            sent.append((f"app{rng.randrange(apps)}", f"{n:x}-{rng.getrandbits(32):08x}"))
        else:  # a repeat: mostly recent ones, some from far back (forgotten by then or not)
            back = min(len(sent), int(rng.expovariate(1 / 40)) + 1) if rng.random() < 0.8 else rng.randrange(len(sent)) + 1
            sent.append(sent[-back])
    return sent


@pytest.mark.parametrize("compact", [True, False], ids=["compact", "sets"])
@pytest.mark.parametrize("limit", [1, 2, 7, 64, 1000])
def test_the_record_answers_as_its_reference_through_repeats_and_turns(compact, limit):
    rng = random.Random(limit)
    for apps, fresh in ((1, 0.6), (3, 0.9), (2, 0.3)):
        record, reference = RecentIds(limit=limit, compact=compact), Reference(limit)
        for app, event_id in _sequence(rng, 6000, apps, fresh):
            assert record.seen(app, event_id) is reference.seen(app, event_id), (app, event_id)
            assert record.sizes() == (len(reference.current), len(reference.previous))
        assert len(record) == len(reference.current) + len(reference.previous)


def test_an_id_is_told_apart_by_its_app():
    record = RecentIds(limit=10)
    assert not record.seen("a", "1") and not record.seen("b", "1")
    assert record.seen("a", "1") and record.seen("b", "1")
    assert not record.seen("a", "1\x00") and not record.seen("", "a1")


@compiled_only
def test_the_compiled_record_is_what_a_compiled_install_uses():
    assert RecentIds().table is not None
    assert RecentIds(compact=False).table is None


def test_the_remembered_ids_hold_no_object_per_id():
    """With the install compiled: two tables of 64-bit slots, 100,000 ids in 2 MB; as sets
    of int objects (main before session 14) they took ~7.4 MB, and their ints kept the
    allocator's pools of the requests around them from emptying."""
    if not native.in_use():
        pytest.skip("pure Python: the record is the sets")
    ids = [f"{i:016x}" for i in range(150_000)]
    gc.collect()
    tracemalloc.start()
    try:
        recent = RecentIds(limit=100_000)
        for event_id in ids:  # past the turn: both generations full
            recent.seen("zjer", event_id)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(recent) == 100_000
    assert recent.seen("zjer", ids[-1]) and recent.seen("zjer", ids[50_000]) and not recent.seen("zjer", ids[0])
    assert held < 2.5 * 2**20, f"{held / 2**20:.1f} MB for 100,000 ids"
    assert not gc.is_tracked(recent.table)  # no object inside for the collector to walk


@compiled_only
def test_the_compiled_record_refuses_what_it_cannot_hold():
    record_type = compiled_record()
    assert record_type is not None
    with pytest.raises(ValueError):
        record_type(0)
    record = record_type(4)
    with pytest.raises(TypeError):
        record.seen("app")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        record.seen("app", ["not hashable"])  # type: ignore[arg-type]
    assert not record.seen("app", "x") and record.seen("app", "x")


class _Hashed:
    """An object of a chosen hash, equal only to itself."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __hash__(self) -> int:
        return self.value


def _colliding_pairs() -> tuple[tuple[_Hashed, _Hashed], tuple[_Hashed, _Hashed]]:
    """Two pairs of different objects whose tuples hash alike: CPython's tuple hash (xxHash's
    lanes, 64-bit) solved for the second pair's last item."""
    m, p1, p2, p5 = 2**64, 11400714785074694791, 14029467366897019727, 2870177450012600261

    def after_first(lane: int) -> int:
        acc = (p5 + lane * p2) % m
        return ((acc << 31) | (acc >> 33)) % m * p1 % m

    a, b, x = 12345, 67890, 424242
    y = ((after_first(a) - after_first(b)) * pow(p2, -1, m) + x) % m
    first, second = (_Hashed(a), _Hashed(x)), (_Hashed(b), _Hashed(y - m if y >= 2**63 else y))
    assert hash(first) == hash(second) and first != second
    return first, second


@compiled_only
def test_the_compiled_record_keys_an_id_by_the_hash_of_its_pair():
    """The C record hashes (app, id) without making the tuple (session 27): it must be the
    very hash((app, id)) the sets use. Two different pairs of equal tuple hashes are one key
    for it, so the second is taken for a repeat; any other hash tells them apart."""
    record_type = compiled_record()
    assert record_type is not None
    first, second = _colliding_pairs()
    record = record_type(10)
    assert not record.seen(*first)  # type: ignore[arg-type]
    assert record.seen(*second)  # type: ignore[arg-type]
    assert not record.seen(first[0], second[1])  # type: ignore[arg-type]
