"""A bounded cache of a function's results keyed by the hash of its arguments.

`functools.lru_cache` keeps its arguments as the key: for the device cache that is the
whole User-Agent (~240 bytes) in a tuple, ~300 bytes an entry beside the answer — 20 MB
of its 65,536 entries when every visitor brings a new User-Agent (issue 17,
bench/visitors_rss.py). Here the key is the arguments' 64-bit hash, and the answer the
only thing kept.

Two argument tuples with the same hash would share an answer: among the ≤ 65,536 keys
of a cache that is a chance of about 1 in 10^10, and str hashes are salted per process
(PYTHONHASHSEED), so a client cannot aim for one. The answers cached here (a device
class) are then at worst another visitor's device class, never an error.

Bounded: past `maxsize` the oldest eighth of the entries (by insertion: first in, first
out) is dropped at once. An entry hit again is not moved; for the few hundred popular
User-Agents, which are looked up all the time, a drop costs one recomputation each.

Out of the garbage collector's walks (`atomic_answers`, issue 17): a device answer is a
NamedTuple of strings, which CPython never untracks by itself (it does so only for exact
tuples), so each of the thousands cached stayed tracked and every full collection of the
hit loop examined them one by one — the largest container such a collection walked
(bench/RESULTS.md, session 11). Such an answer is untracked as it is cached, and so is
the dict, which CPython tracks again whenever a non-exact tuple goes in — holding ints
and untracked answers only, it can be in no cycle (collector/untracked.py; ~0.2 µs a
call, one or two a miss). `python -m bench.gc_tables` has the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import _CacheInfo
from gc import is_tracked
from itertools import islice
from typing import Generic, TypeVar

from collector.untracked import untracked

T = TypeVar("T")


class HashedCache(Generic[T]):
    def __init__(self, compute: Callable[..., T], maxsize: int, atomic_answers: bool = False) -> None:
        """`atomic_answers`: the caller's promise that every answer is a container of
        atomic values only (strings, ints), never part of a cycle (module docstring)."""
        self._compute = compute
        self.maxsize = max(0, maxsize)
        self._atomic_answers = atomic_answers
        self._answers: dict[int, T] = {}
        self._lookups = 0
        self._misses = 0

    def __call__(self, *args: Hashable) -> T:
        return self._answer(hash(args), args)

    def under(self, key: Hashable, *args: Hashable) -> T:
        """The answer cached under `key` rather than under the arguments: arguments that
        differ only in what the answer does not depend on share one answer, computed from
        the first of them (enrich/device.py's memo of User-Agents by their masked browser
        versions). `key` is kept as its hash, as the arguments are by __call__."""
        return self._answer(hash(key), args)

    def _answer(self, hashed: int, args: tuple) -> T:
        self._lookups += 1
        found = self._answers.get(hashed)
        if found is None:
            found = self._miss(hashed, args)
        return found

    def _miss(self, key: int, args: tuple) -> T:
        self._misses += 1
        answer = self._compute(*args)
        if self.maxsize:
            if self._atomic_answers and is_tracked(answer):
                untracked(answer)
            answers = self._answers
            if len(answers) >= self.maxsize:
                for old in list(islice(answers, max(1, self.maxsize // 8))):
                    del answers[old]
            answers[key] = answer
            if self._atomic_answers:
                untracked(answers)
        return answer

    def cache_info(self) -> _CacheInfo:
        """As functools' caches give it (hits, misses, maxsize, currsize): for GET /metrics."""
        return _CacheInfo(self._lookups - self._misses, self._misses, self.maxsize, len(self._answers))

    def cache_clear(self) -> None:
        self._answers = {}
