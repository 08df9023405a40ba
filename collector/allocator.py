"""The C allocator's share of a worker's memory (glibc; elsewhere these do nothing).

The flusher builds its writes in threads (store/flusher.py). glibc gives each thread
that allocates its own arena, up to 8 per core, and keeps what an arena once held: after
a few large flushes a worker's RSS ratchets up by hundreds of MB that Python has long
freed (issue 13 measured 85 → 763 → 961 → 1,503 MB over three rounds of distinct values).
So a worker caps its arenas (`malloc_arena_max`) before it starts a thread, and after a
large flush hands the freed heap back to the system (`trim`). One arena, the default: the
flush's threads then build in the heap the hit loop allocates from, which reuses what a
build freed instead of an arena of their own holding it: the POST runs' peaks were 5-11 MB
lower with one arena than with two in two interleaved pairs, with no CPU per event beyond
the runs' spread (bench/RESULTS.md, session 12; session 9 had seen +1 us, in two of three).

glibc also raises its mmap threshold each time a block it had mmapped is freed (up to
32 MB): from then on the flush's large blocks — packed commands, argument lists, the dict
tables of a batch's parts — come from the heap and stay there until a trim. A worker fixes
the threshold (`malloc_mmap_threshold`, 128 KiB: glibc's starting value), so each such
block is mapped for itself and handed back when freed: after 10^6 distinct visitors the
peak RSS was 187 MB instead of 201, the end RSS the same (bench/RESULTS.md, session 8).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3

_libc: ctypes.CDLL | None = None
_looked = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _looked
    if not _looked:
        _looked = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                _libc = libc
        except OSError:
            _libc = None
    return _libc


def limit_arenas(arenas: int) -> bool:
    """At most `arenas` malloc arenas for this process (0: leave glibc's default). Call it
    before threads start; True when it took effect."""
    return _mallopt(M_ARENA_MAX, "M_ARENA_MAX", arenas, "keeps its default arenas")


def fix_mmap_threshold(size: int) -> bool:
    """Blocks of at least `size` bytes mapped for themselves, a threshold glibc no longer
    raises (0: leave glibc's dynamic one). True when it took effect."""
    return _mallopt(M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", size, "keeps its dynamic threshold")


def _mallopt(option: int, name: str, value: int, otherwise: str) -> bool:
    """mallopt(option, value) when value > 0 and glibc is at hand; a warning if refused."""
    libc = _glibc()
    if value <= 0 or libc is None:
        return False
    done = bool(libc.mallopt(option, value))
    if not done:
        log.warning("mallopt(%s, %d) failed: the allocator %s", name, value, otherwise)
    return done


def trim() -> None:
    """Give the heap glibc holds free back to the system (some milliseconds)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
