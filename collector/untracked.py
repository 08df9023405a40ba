"""Containers kept out of the garbage collector's walks (issue 17, tail latency).

CPython's cyclic garbage collector walks every tracked container of a generation at each
of its collections, entry by entry: a set of 100,000 ints costs a full collection ~4 ms
(bench/RESULTS.md, session 11), a second's count lists made generation-1 collections
stall the hit loop (session 10). A container that only ever holds atomic values (ints,
strings, bytes) can never be part of a reference cycle, so the collector has nothing to
find in it: untracked, it is still freed the moment its last reference goes (reference
counting). CPython untracks such tuples and dicts by itself, never lists or sets, and
Python has no call for it: this is CPython's own PyObject_GC_UnTrack, through ctypes
(~0.3 µs a call: for containers made once in a while, or once per new entry).

The caller's promise: nothing the container holds can lead back to it — only atomic
values, or tuples of them (a fresh tuple may still be tracked itself: it is then walked
on its own, and the untracked container counts as a reference from outside). Never a
list, a dict or an instance. A set stays untracked as it grows (set_add does not track
it again); a dict is tracked again when an item that may be tracked goes in.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, TypeVar

from collector.native import c_module

_GC_UNTRACK = ctypes.pythonapi.PyObject_GC_UnTrack
_GC_UNTRACK.argtypes = (ctypes.py_object,)
_GC_UNTRACK.restype = None

Container = TypeVar("Container")


def untracked_by_ctypes(container: Container) -> Container:
    """`container`, no longer walked by the garbage collector (see the module's doc)."""
    _GC_UNTRACK(container)
    return container


def _compiled() -> Callable[[Any], Any] | None:
    """collector/_untrack.c's `untracked` (the same call, without ctypes and a Python frame:
    ~0.3 µs less, once per new cube cell of a snapshot); None when it was not built (or its
    build is stale: collector/native.py then refuses it)."""
    module = c_module("collector._untrack")
    return None if module is None else module.untracked


untracked: Callable[[Container], Container] = _compiled() or untracked_by_ctypes


def untracked_set() -> set[Any]:
    """A new empty set, never walked by the garbage collector (see the module's doc)."""
    return untracked(set())
